"""Where stock is, how much is on hand, and how much is held for unshipped orders."""

from django.db import models
from django.db.models import F

from monolith.core.models import TimeStampedModel


class Warehouse(TimeStampedModel):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=120)
    city = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=0, help_text="Lower ships first.")

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.code


class StockLevel(TimeStampedModel):
    """On-hand and reserved units of one product in one warehouse."""

    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="stock")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stock")
    quantity = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    reorder_level = models.IntegerField(default=5)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stock_level_once"),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0) & models.Q(reserved__lte=F("quantity")),
                name="stock_reserved_within_quantity",
            ),
        ]

    @property
    def available(self) -> int:
        return self.quantity - self.reserved


class StockReservation(TimeStampedModel):
    """Units held for an order line until it ships (consumed) or is cancelled (released)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        CONSUMED = "consumed"
        RELEASED = "released"
        RETURNED = "returned"

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="reservations")
    stock_level = models.ForeignKey(
        StockLevel, on_delete=models.PROTECT, related_name="reservations"
    )
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["id"]
