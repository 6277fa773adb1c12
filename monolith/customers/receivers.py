"""Every new user gets a customer profile; paying earns loyalty points."""

from django.conf import settings
from django.db.models import F
from django.db.models.signals import post_save
from django.dispatch import receiver

from monolith.customers.models import Customer
from monolith.payments.signals import payment_captured


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="customers.profile")
def create_profile(sender, instance, created, raw=False, **kwargs):
    if created and not raw:  # fixtures (loaddata) bring their own profiles
        Customer.objects.get_or_create(user=instance)


@receiver(payment_captured, dispatch_uid="customers.loyalty")
def award_loyalty_points(sender, payment, **kwargs):
    Customer.objects.filter(orders__payments=payment).update(
        loyalty_points=F("loyalty_points") + int(payment.amount)
    )
