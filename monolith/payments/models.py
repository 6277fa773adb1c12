"""Money taken for orders, and money given back."""

from decimal import Decimal

from django.db import models

from monolith.core.models import MoneyField, TimeStampedModel, default_currency
from monolith.orders.models import Order


class Payment(TimeStampedModel):
    class Status(models.TextChoices):
        AUTHORIZED = "authorized"
        CAPTURED = "captured"
        FAILED = "failed"
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = MoneyField()
    currency = models.CharField(max_length=3, default=default_currency)
    status = models.CharField(max_length=20, choices=Status.choices)
    gateway = models.CharField(max_length=40)
    gateway_reference = models.CharField(max_length=64, blank=True, default="")
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    captured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @property
    def refunded_amount(self):
        return sum((r.amount for r in self.refunds.all()), Decimal("0.00"))


class Refund(TimeStampedModel):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = MoneyField()
    reason = models.CharField(max_length=200, blank=True, default="")
    gateway_reference = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["id"]
