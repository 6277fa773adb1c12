"""How orders travel: shipping methods, shipments and their tracking events."""

from django.db import models

from monolith.core.models import MoneyField, TimeStampedModel


class ShippingMethod(TimeStampedModel):
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    price = MoneyField()
    estimated_days = models.PositiveSmallIntegerField(default=3)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Shipment(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="shipment")
    method = models.ForeignKey(ShippingMethod, on_delete=models.PROTECT, related_name="shipments")
    warehouse = models.ForeignKey(
        "inventory.Warehouse", null=True, on_delete=models.SET_NULL, related_name="shipments"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    tracking_number = models.CharField(max_length=40, unique=True)
    address = models.TextField()
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]


class TrackingEvent(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=40)
    location = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
