"""Shipping reacts to payments: a captured payment gets a shipment, a refund cancels it."""

from django.dispatch import receiver

from monolith.payments.signals import payment_captured, refund_issued
from monolith.shipping import services
from monolith.shipping.models import Shipment


@receiver(payment_captured, dispatch_uid="shipping.create_shipment")
def create_shipment(sender, payment, **kwargs):
    services.create_shipment(payment.order)


@receiver(refund_issued, dispatch_uid="shipping.cancel_shipment")
def cancel_pending_shipment(sender, refund, full, **kwargs):
    pending = Shipment.objects.filter(
        order__payments=refund.payment, status=Shipment.Status.PENDING
    ).first()
    if full and pending:
        services.cancel(pending)
