"""Inventory reacts to orders, refunds and shipments sent by other apps."""

from django.db import transaction
from django.dispatch import receiver

from monolith.inventory import services
from monolith.inventory.tasks import check_low_stock
from monolith.orders.signals import order_cancelled, order_placed
from monolith.payments.signals import refund_issued
from monolith.shipping.signals import shipment_dispatched


@receiver(order_placed, dispatch_uid="inventory.reserve_stock")
def reserve_stock(sender, order, **kwargs):
    services.reserve_order(order)
    product_ids = list(order.lines.values_list("product_id", flat=True))
    transaction.on_commit(lambda: check_low_stock.delay(product_ids))


@receiver(order_cancelled, dispatch_uid="inventory.release_stock")
def release_stock(sender, order, **kwargs):
    services.release_order(order)


@receiver(shipment_dispatched, dispatch_uid="inventory.consume_stock")
def consume_stock(sender, shipment, **kwargs):
    services.consume_order(shipment.order)


@receiver(refund_issued, dispatch_uid="inventory.restore_stock")
def restore_stock(sender, refund, full, **kwargs):
    if full:
        services.restore_order(refund.payment.order)
