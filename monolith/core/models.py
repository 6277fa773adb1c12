"""Abstract bases every app's models inherit: timestamps and money."""

from decimal import Decimal

from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    """Adds created_at/updated_at, which reports and change-data capture rely on."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def default_currency() -> str:
    return settings.SHOP_CURRENCY


class MoneyField(models.DecimalField):
    """A decimal amount with two places, the shop's only representation of money."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("default", Decimal("0.00"))
        super().__init__(*args, **kwargs)
