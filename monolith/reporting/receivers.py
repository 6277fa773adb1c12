"""Reporting refreshes the day's figures when money moves."""

from django.db import transaction
from django.dispatch import receiver

from monolith.payments.signals import payment_captured, refund_issued
from monolith.reporting.tasks import refresh_daily_sales


def _refresh_later(order) -> None:
    day = order.placed_at.date().isoformat()
    transaction.on_commit(lambda: refresh_daily_sales.apply_async(kwargs={"day": day}))


@receiver(payment_captured, dispatch_uid="reporting.on_payment")
def on_payment(sender, payment, **kwargs):
    _refresh_later(payment.order)


@receiver(refund_issued, dispatch_uid="reporting.on_refund")
def on_refund(sender, refund, **kwargs):
    _refresh_later(refund.payment.order)
