"""Signals sent when money moves; orders, shipping, inventory and reporting listen."""

from django.dispatch import Signal

# kwargs: payment
payment_captured = Signal()
# kwargs: refund, full (True when the whole payment is now refunded)
refund_issued = Signal()
