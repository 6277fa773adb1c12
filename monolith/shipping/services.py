"""Create a shipment for a paid order and move it along its journey."""

import hashlib

from django.db import transaction
from django.utils import timezone

from monolith.shipping.models import Shipment, TrackingEvent
from monolith.shipping.signals import shipment_dispatched


def tracking_number(order_number: str) -> str:
    """A carrier-style tracking number derived from the order number."""
    return "TRK" + hashlib.sha1(order_number.encode()).hexdigest()[:12].upper()


@transaction.atomic
def create_shipment(order) -> Shipment:
    """One pending shipment per order, from the warehouse holding its first reservation."""
    reservation = order.reservations.select_related("stock_level").first()
    shipment, created = Shipment.objects.get_or_create(
        order=order,
        defaults={
            "method": order.shipping_method,
            "warehouse_id": reservation.stock_level.warehouse_id if reservation else None,
            "tracking_number": tracking_number(order.number),
            "address": order.shipping_address.one_line() if order.shipping_address else "",
        },
    )
    if created:
        TrackingEvent.objects.create(shipment=shipment, status="label_created")
    return shipment


@transaction.atomic
def dispatch(shipment: Shipment, location: str = "") -> Shipment:
    """The parcel left the warehouse."""
    shipment.status = Shipment.Status.SHIPPED
    shipment.shipped_at = timezone.now()
    shipment.save(update_fields=["status", "shipped_at", "updated_at"])
    TrackingEvent.objects.create(shipment=shipment, status="shipped", location=location)
    shipment_dispatched.send(sender=Shipment, shipment=shipment)
    return shipment


@transaction.atomic
def cancel(shipment: Shipment) -> Shipment:
    shipment.status = Shipment.Status.CANCELLED
    shipment.save(update_fields=["status", "updated_at"])
    TrackingEvent.objects.create(shipment=shipment, status="cancelled")
    return shipment
