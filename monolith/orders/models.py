"""Orders placed at checkout, their lines, and every status change."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from monolith.catalog.models import Product
from monolith.core.models import MoneyField, TimeStampedModel, default_currency
from monolith.customers.models import Address


class Order(TimeStampedModel):
    class Status(models.TextChoices):
        PLACED = "placed"
        PAID = "paid"
        PAYMENT_FAILED = "payment_failed"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"
        REFUNDED = "refunded"

    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLACED)
    currency = models.CharField(max_length=3, default=default_currency)
    subtotal = MoneyField()
    discount_total = MoneyField()
    shipping_total = MoneyField()
    total = MoneyField()
    voucher = models.ForeignKey(
        "promotions.Voucher",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    shipping_address = models.ForeignKey(
        Address, null=True, on_delete=models.SET_NULL, related_name="orders"
    )
    shipping_method = models.ForeignKey(
        "shipping.ShippingMethod", null=True, on_delete=models.PROTECT, related_name="orders"
    )
    placed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "placed_at"])]

    def __str__(self) -> str:
        return self.number

    @property
    def tracking_number(self) -> str | None:
        shipment = getattr(self, "shipment", None)
        return shipment.tracking_number if shipment else None


class OrderLine(models.Model):
    """One product on an order, with name and price frozen at checkout."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = MoneyField()
    line_total = MoneyField()

    class Meta:
        ordering = ["id"]


class OrderStatusHistory(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    note = models.CharField(max_length=200, blank=True, default="")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "order status history"
