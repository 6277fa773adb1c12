"""Signals the order lifecycle sends; inventory, promotions and notifications listen."""

from django.dispatch import Signal

# kwargs: order
order_placed = Signal()
# kwargs: order, reason
order_cancelled = Signal()
