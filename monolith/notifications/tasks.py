"""E-mails the shop sends, as Celery tasks other apps enqueue after their transaction commits."""

from celery import shared_task
from django.conf import settings

from monolith.inventory.models import StockLevel
from monolith.notifications.services import notify
from monolith.orders.models import Order
from monolith.payments.models import Refund
from monolith.shipping.models import Shipment

WAREHOUSE_TEAM = "warehouse@example.com"


@shared_task(name="notifications.send_order_confirmation")
def send_order_confirmation(order_id: int) -> int:
    order = Order.objects.select_related("customer__user").get(pk=order_id)
    lines = "\n".join(
        f"{line.quantity} x {line.name} @ {line.unit_price}" for line in order.lines.all()
    )
    return notify(
        order,
        "order_confirmation",
        order.customer.user.email,
        f"Your order {order.number}",
        f"Thank you! We received order {order.number}:\n{lines}\n"
        f"Total {order.total} {order.currency}",
    ).pk


@shared_task(name="notifications.send_shipment_notification")
def send_shipment_notification(shipment_id: int) -> int:
    shipment = Shipment.objects.select_related("order__customer__user", "method").get(
        pk=shipment_id
    )
    order = shipment.order
    return notify(
        shipment,
        f"shipment_{shipment.status}",
        order.customer.user.email,
        f"Order {order.number}: shipment {shipment.status}",
        f"Shipment {shipment.tracking_number} via {shipment.method.name} is {shipment.status}.",
    ).pk


@shared_task(name="notifications.send_refund_notification")
def send_refund_notification(refund_id: int) -> int:
    refund = Refund.objects.select_related("payment__order__customer__user").get(pk=refund_id)
    order = refund.payment.order
    return notify(
        refund,
        "refund",
        order.customer.user.email,
        f"Refund for order {order.number}",
        f"We refunded {refund.amount} {refund.payment.currency}: {refund.reason or 'no reason'}.",
    ).pk


@shared_task(name="notifications.send_low_stock_alert")
def send_low_stock_alert(stock_level_id: int) -> int:
    level = StockLevel.objects.select_related("product", "warehouse").get(pk=stock_level_id)
    return notify(
        level,
        "low_stock",
        getattr(settings, "WAREHOUSE_TEAM_EMAIL", WAREHOUSE_TEAM),
        f"Low stock: {level.product.sku} in {level.warehouse.code}",
        f"{level.available} available ({level.quantity} on hand, {level.reserved} reserved).",
    ).pk
