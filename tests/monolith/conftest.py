"""Fixtures for the shop's user journeys: an API client and a small, known catalog."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from monolith.catalog.models import Category, Product, ProductAttribute, ProductImage


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def catalog(db) -> dict[str, object]:
    """Two root categories, one child, and four products with known prices."""
    clothing = Category.objects.create(name="Clothing", slug="clothing")
    shirts = Category.objects.create(name="Shirts", slug="shirts", parent=clothing)
    books = Category.objects.create(name="Books", slug="books")
    products = {
        "tee": Product.objects.create(
            sku="TEE-1",
            slug="plain-tee",
            name="Plain tee",
            price=Decimal("12.50"),
            category=shirts,
            description="Cotton t-shirt",
        ),
        "oxford": Product.objects.create(
            sku="SHIRT-2",
            slug="oxford-shirt",
            name="Oxford shirt",
            price=Decimal("49.00"),
            category=shirts,
        ),
        "novel": Product.objects.create(
            sku="BOOK-1",
            slug="a-novel",
            name="A novel",
            price=Decimal("18.00"),
            category=books,
        ),
        "retired": Product.objects.create(
            sku="BOOK-2",
            slug="old-atlas",
            name="Old atlas",
            price=Decimal("30.00"),
            category=books,
            is_active=False,
        ),
    }
    ProductImage.objects.create(product=products["tee"], url="https://img.example/tee.jpg")
    ProductAttribute.objects.create(product=products["tee"], name="colour", value="white")
    return {"clothing": clothing, "shirts": shirts, "books": books, **products}
