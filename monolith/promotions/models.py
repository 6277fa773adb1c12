"""Vouchers a shopper types in at checkout, and automatic discounts on products."""

from decimal import Decimal

from django.db import models
from django.utils import timezone

from monolith.catalog.models import Category
from monolith.core.models import MoneyField, TimeStampedModel


class Voucher(TimeStampedModel):
    """A code worth a percentage or a fixed amount off an order above a minimum."""

    code = models.CharField(max_length=32, unique=True)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    amount_off = MoneyField()
    min_order_total = MoneyField()
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    times_used = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.code

    def is_usable(self, at=None) -> bool:
        at = at or timezone.now()
        if at < self.valid_from or (self.valid_until and at > self.valid_until):
            return False
        return self.max_uses is None or self.times_used < self.max_uses


class Discount(TimeStampedModel):
    """An automatic percentage off selected products or whole categories."""

    name = models.CharField(max_length=120)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2)
    is_active = models.BooleanField(default=True)
    products = models.ManyToManyField("catalog.Product", blank=True, related_name="discounts")
    categories = models.ManyToManyField(Category, blank=True, related_name="discounts")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
