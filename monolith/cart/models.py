"""A shopper's cart: what they intend to buy, priced when added."""

from django.conf import settings
from django.db import models

from monolith.catalog.models import Product
from monolith.core.models import MoneyField, TimeStampedModel


class Cart(TimeStampedModel):
    class Status(models.TextChoices):
        OPEN = "open"
        CHECKED_OUT = "checked_out"
        ABANDONED = "abandoned"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="carts",
    )
    session_key = models.CharField(max_length=40, blank=True, default="", db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    voucher = models.ForeignKey(
        "promotions.Voucher", null=True, blank=True, on_delete=models.SET_NULL, related_name="carts"
    )

    class Meta:
        ordering = ["id"]


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="cart_items")
    quantity = models.PositiveIntegerField(default=1)
    unit_price = MoneyField()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["cart", "product"], name="cart_item_once")]

    @property
    def line_total(self):
        return self.unit_price * self.quantity
