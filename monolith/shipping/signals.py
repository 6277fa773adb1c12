"""Signals of a shipment's journey; orders and inventory listen."""

from django.dispatch import Signal

# kwargs: shipment
shipment_dispatched = Signal()
