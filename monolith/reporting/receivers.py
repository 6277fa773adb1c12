"""Reporting refreshes the day's figures when money moves (connected in ReportingConfig.ready)."""

from django.db import transaction

from monolith.reporting.tasks import refresh_daily_sales


def _refresh_later(order) -> None:
    day = order.placed_at.date().isoformat()
    transaction.on_commit(lambda: refresh_daily_sales.apply_async(kwargs={"day": day}))


def on_payment(sender, payment, **kwargs):
    _refresh_later(payment.order)


def on_refund(sender, refund, **kwargs):
    _refresh_later(refund.payment.order)
