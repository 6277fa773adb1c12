"""Promotions count voucher redemptions when an order is placed."""

from django.db.models import F
from django.dispatch import receiver

from monolith.orders.signals import order_placed
from monolith.promotions.models import Voucher


@receiver(order_placed, dispatch_uid="promotions.redeem_voucher")
def redeem_voucher(sender, order, **kwargs):
    if order.voucher_id:
        Voucher.objects.filter(pk=order.voucher_id).update(times_used=F("times_used") + 1)
