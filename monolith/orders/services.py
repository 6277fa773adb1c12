"""Turn a cart into an order, and move orders through their statuses."""

import secrets

from django.db import transaction
from django.utils import timezone

from monolith.cart.models import Cart
from monolith.core.money import total
from monolith.orders.models import Order, OrderLine, OrderStatusHistory
from monolith.orders.signals import order_cancelled, order_placed
from monolith.promotions.services import voucher_reduction


class CheckoutError(Exception):
    """The cart cannot become an order; the message tells the shopper why."""


def new_order_number() -> str:
    return timezone.now().strftime("%y%m%d") + "-" + secrets.token_hex(4).upper()


def set_status(order: Order, status: str, note: str = "", user=None) -> Order:
    """Change status and record the change in the order's history."""
    OrderStatusHistory.objects.create(
        order=order, from_status=order.status, to_status=status, note=note, changed_by=user
    )
    order.status = status
    order.save(update_fields=["status", "updated_at"])
    return order


@transaction.atomic
def place_order(cart: Cart, customer, address, shipping_method) -> Order:
    """Freeze the cart into an order; `order_placed` lets inventory reserve its stock."""
    items = list(cart.items.select_related("product"))
    if not items:
        raise CheckoutError("the cart is empty")
    subtotal = total(item.line_total for item in items)
    discount = voucher_reduction(cart.voucher, subtotal)
    order = Order.objects.create(
        number=new_order_number(),
        customer=customer,
        subtotal=subtotal,
        discount_total=discount,
        shipping_total=shipping_method.price,
        total=subtotal - discount + shipping_method.price,
        voucher=cart.voucher,
        shipping_address=address,
        shipping_method=shipping_method,
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            product=item.product,
            sku=item.product.sku,
            name=item.product.name,
            quantity=item.quantity,
            unit_price=item.unit_price,
            line_total=item.line_total,
        )
        for item in items
    )
    OrderStatusHistory.objects.create(order=order, to_status=order.status, note="checkout")
    cart.status = Cart.Status.CHECKED_OUT
    cart.save(update_fields=["status", "updated_at"])
    order_placed.send(sender=Order, order=order)
    return order


@transaction.atomic
def cancel_order(order: Order, reason: str, user=None) -> Order:
    if order.status != Order.Status.PLACED:
        raise CheckoutError(f"order {order.number} is {order.status}; only unpaid orders cancel")
    set_status(order, Order.Status.CANCELLED, reason, user)
    order_cancelled.send(sender=Order, order=order, reason=reason)
    return order
