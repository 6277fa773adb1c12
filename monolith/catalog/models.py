"""What the shop sells: a category tree, products, their images and attributes."""

from django.db import models

from monolith.core.models import MoneyField, TimeStampedModel, default_currency


class Category(TimeStampedModel):
    """A node of the category tree (parent is null at the roots)."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    description = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def ancestors(self) -> list["Category"]:
        """The path from the root down to this category's parent."""
        path: list[Category] = []
        node = self.parent
        while node is not None:
            path.insert(0, node)
            node = node.parent
        return path


class Product(TimeStampedModel):
    """A sellable item; price is per unit in `currency`."""

    sku = models.CharField(max_length=32, unique=True)
    slug = models.SlugField(max_length=160, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = MoneyField()
    currency = models.CharField(max_length=3, default=default_currency)
    is_active = models.BooleanField(default=True, db_index=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["category", "price"])]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def units_available(self) -> int:
        """Sellable units over all warehouses (asks inventory; imported here to avoid a cycle)."""
        from monolith.inventory.services import available_for

        return available_for(self.pk)

    def average_rating(self) -> float | None:
        """Mean approved review rating, used by the storefront's product cards."""
        rating = self.reviews.filter(is_approved=True).aggregate(avg=models.Avg("rating"))["avg"]
        return round(rating, 2) if rating is not None else None


class ProductImage(models.Model):
    """A picture of a product, shown in `position` order."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    url = models.URLField(max_length=300)
    alt_text = models.CharField(max_length=200, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]


class ProductAttribute(models.Model):
    """A named property of a product (colour, size, material...)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="attributes")
    name = models.CharField(max_length=60)
    value = models.CharField(max_length=200)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "name"], name="catalog_attribute_once")
        ]
