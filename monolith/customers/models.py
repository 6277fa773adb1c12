"""Shoppers: a profile on Django's auth user, and their addresses."""

from django.conf import settings
from django.db import models

from monolith.core.models import TimeStampedModel


class Customer(TimeStampedModel):
    """The shop's view of a user: contact details, loyalty and marketing consent."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer"
    )
    phone = models.CharField(max_length=32, blank=True, default="")
    marketing_opt_in = models.BooleanField(default=False)
    loyalty_points = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def email(self) -> str:
        return self.user.email

    def lifetime_value(self):
        """What this customer paid over all orders, net of refunds."""
        from monolith.payments.models import Payment, Refund

        paid = Payment.objects.filter(
            order__customer=self, status__in=["captured", "refunded", "partially_refunded"]
        ).aggregate(s=models.Sum("amount"))["s"]
        refunded = Refund.objects.filter(payment__order__customer=self).aggregate(
            s=models.Sum("amount")
        )["s"]
        return (paid or 0) - (refunded or 0)


class Address(TimeStampedModel):
    """A postal address a customer ships to."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    full_name = models.CharField(max_length=120)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100)
    postcode = models.CharField(max_length=20)
    country = models.CharField(max_length=2, default="DE")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "addresses"

    def one_line(self) -> str:
        return f"{self.full_name}, {self.line1}, {self.postcode} {self.city}, {self.country}"
