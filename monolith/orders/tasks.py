"""Order housekeeping jobs."""

from datetime import timedelta

from celery import shared_task, signature
from django.utils import timezone

from monolith.orders.models import Order
from monolith.orders.services import cancel_order


@shared_task(name="orders.cancel_unpaid_orders")
def cancel_unpaid_orders(older_than_hours: int = 24) -> int:
    """Cancel orders nobody paid for; their reserved stock goes back on sale."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    stale = Order.objects.filter(status=Order.Status.PLACED, placed_at__lte=cutoff)
    for order in stale:
        cancel_order(order, "not paid in time")
    for day in sorted({order.placed_at.date().isoformat() for order in stale}):
        # By name: orders must not import reporting (the old cycle-avoidance habit).
        signature("reporting.refresh_daily_sales", kwargs={"day": day}).apply_async()
    return len(stale)
