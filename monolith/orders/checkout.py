"""Checkout, the one flow that crosses every app: cart -> order -> stock -> payment -> shipment."""

from dataclasses import dataclass

from django.db import transaction

from monolith.customers.models import Address
from monolith.orders import services
from monolith.orders.models import Order
from monolith.orders.signals import order_cancelled
from monolith.payments.models import Payment
from monolith.payments.services import charge_order
from monolith.shipping.models import ShippingMethod


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    payment: Payment


def checkout(cart, customer, address_id: int, shipping_method: str, payment_token: str):
    """Place the order (reserving stock) and charge it; a declined card cancels the order."""
    address = Address.objects.filter(pk=address_id, customer=customer).first()
    if address is None:
        raise services.CheckoutError(f"address {address_id} is not one of yours")
    method = ShippingMethod.objects.filter(code=shipping_method, is_active=True).first()
    if method is None:
        raise services.CheckoutError(f"unknown shipping method {shipping_method!r}")
    with transaction.atomic():
        order = services.place_order(cart, customer, address, method)
    payment = charge_order(order, payment_token)
    if payment.status == Payment.Status.FAILED:
        with transaction.atomic():
            cart.status = type(cart).Status.OPEN  # the shopper may retry with another card
            cart.save(update_fields=["status", "updated_at"])
            services.set_status(order, Order.Status.PAYMENT_FAILED, payment.failure_reason)
            order_cancelled.send(sender=Order, order=order, reason="payment failed")
    order.refresh_from_db()
    return CheckoutResult(order=order, payment=payment)
