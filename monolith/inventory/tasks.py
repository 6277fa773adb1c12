"""Inventory background jobs."""

from celery import shared_task

from monolith.inventory.services import low_stock_levels
from monolith.notifications.tasks import send_low_stock_alert


@shared_task(name="inventory.check_low_stock")
def check_low_stock(product_ids: list[int]) -> int:
    """Alert the warehouse team about each stock level at or under its reorder level."""
    levels = list(low_stock_levels(product_ids))
    for level in levels:
        send_low_stock_alert.delay(level.id)
    return len(levels)
