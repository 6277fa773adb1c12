"""Orders follow what payments and shipping report."""

from django.dispatch import receiver

from monolith.orders.models import Order
from monolith.orders.services import set_status
from monolith.payments.signals import payment_captured, refund_issued
from monolith.shipping.signals import shipment_dispatched


@receiver(payment_captured, dispatch_uid="orders.mark_paid")
def mark_paid(sender, payment, **kwargs):
    set_status(payment.order, Order.Status.PAID, f"payment {payment.gateway_reference}")


@receiver(shipment_dispatched, dispatch_uid="orders.mark_shipped")
def mark_shipped(sender, shipment, **kwargs):
    set_status(shipment.order, Order.Status.SHIPPED, shipment.tracking_number)


@receiver(refund_issued, dispatch_uid="orders.mark_refunded")
def mark_refunded(sender, refund, full, **kwargs):
    if full:
        set_status(refund.payment.order, Order.Status.REFUNDED, refund.reason)
