"""Rebuild the materialized daily sales figures."""

from datetime import date

from celery import shared_task
from django.utils import timezone

from monolith.reporting.models import DailySales
from monolith.reporting.queries import sales_by_day


@shared_task(name="reporting.refresh_daily_sales")
def refresh_daily_sales(day: str | None = None) -> int:
    """Recompute one day (ISO date; default today) from orders, lines and refunds."""
    target = date.fromisoformat(day) if day else timezone.now().date()
    rows = sales_by_day(target, target)
    figures = rows[0] if rows else {"orders": 0, "items": 0, "revenue": 0, "refunded": 0}
    DailySales.objects.update_or_create(
        day=target,
        defaults={key: figures[key] for key in ("orders", "items", "revenue", "refunded")},
    )
    return figures["orders"]
