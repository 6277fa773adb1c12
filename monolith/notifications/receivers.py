"""Notifications listen to other apps and enqueue e-mails once their transaction commits."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from monolith.notifications import tasks
from monolith.orders.signals import order_placed
from monolith.payments.signals import refund_issued


@receiver(order_placed, dispatch_uid="notifications.order_confirmation")
def confirm_order(sender, order, **kwargs):
    transaction.on_commit(lambda: tasks.send_order_confirmation.delay(order.pk))


@receiver(post_save, sender="shipping.Shipment", dispatch_uid="notifications.shipment")
def announce_shipment(sender, instance, created, update_fields=None, raw=False, **kwargs):
    if raw or (not created and "status" not in (update_fields or ())):
        return  # loaddata replays history: no e-mails for it
    shipment_id = instance.pk
    transaction.on_commit(lambda: tasks.send_shipment_notification.delay(shipment_id))


@receiver(refund_issued, dispatch_uid="notifications.refund")
def announce_refund(sender, refund, **kwargs):
    transaction.on_commit(
        lambda: tasks.send_refund_notification.apply_async(args=[refund.pk], countdown=5)
    )
