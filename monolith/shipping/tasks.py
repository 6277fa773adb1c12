"""Shipping background jobs."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from monolith.shipping import services
from monolith.shipping.models import Shipment


@shared_task(name="shipping.dispatch_due_shipments")
def dispatch_due_shipments(older_than_minutes: int = 60) -> int:
    """Hand pending shipments older than the packing time to the carrier."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    due = Shipment.objects.filter(status=Shipment.Status.PENDING, created_at__lte=cutoff)
    count = 0
    for shipment in due.select_related("order"):
        services.dispatch(shipment, location="warehouse")
        count += 1
    return count
