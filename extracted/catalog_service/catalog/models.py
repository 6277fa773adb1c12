"""The service's copy of the catalog, filled by change-data events from the monolith.

Differences from the monolith's models, on purpose: foreign keys have no database constraint
(events of different tables arrive in any order), slugs and SKUs are indexed but not unique
(two rows can swap a slug across two events), and timestamps are plain values copied from
the source rather than set on save by auto_now.
"""

from decimal import Decimal

from django.db import models
from django.utils import timezone


class TimeStamped(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        """Writes made by the service itself (after cut-over) stamp updated_at."""
        self.updated_at = timezone.now()
        super().save(*args, **kwargs)


class Category(TimeStamped):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="children",
    )
    description = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["id"]


class Product(TimeStamped):
    sku = models.CharField(max_length=32, db_index=True)
    slug = models.SlugField(max_length=160)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="EUR")
    is_active = models.BooleanField(default=True, db_index=True)
    category = models.ForeignKey(
        Category, on_delete=models.DO_NOTHING, db_constraint=False, related_name="products"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["category", "price"])]


class ProductImage(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.DO_NOTHING, db_constraint=False, related_name="images"
    )
    url = models.URLField(max_length=300)
    alt_text = models.CharField(max_length=200, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]


class ProductAttribute(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.DO_NOTHING, db_constraint=False, related_name="attributes"
    )
    name = models.CharField(max_length=60)
    value = models.CharField(max_length=200)

    class Meta:
        ordering = ["name", "id"]
