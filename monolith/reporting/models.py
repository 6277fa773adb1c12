"""Materialized daily figures, rebuilt by a Celery beat task from orders and payments."""

from django.db import models

from monolith.core.models import MoneyField


class DailySales(models.Model):
    day = models.DateField(unique=True)
    orders = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    revenue = MoneyField()
    refunded = MoneyField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "daily sales"
