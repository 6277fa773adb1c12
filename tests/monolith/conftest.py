"""Fixtures for the shop's user journeys: an API client and a small, known catalog."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monolith import celery_app
from monolith.catalog.models import Category, Product, ProductAttribute, ProductImage
from monolith.inventory.models import StockLevel, Warehouse
from monolith.shipping.models import ShippingMethod


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real hashing costs ~0.3 s per user; the journeys are not about password strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def eager_celery():
    """Run Celery tasks inline, as CELERY_TASK_ALWAYS_EAGER=1 does for the demo."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def catalog(db) -> dict[str, object]:
    """Two root categories, one child, and four products with known prices."""
    clothing = Category.objects.create(name="Clothing", slug="clothing")
    shirts = Category.objects.create(name="Shirts", slug="shirts", parent=clothing)
    books = Category.objects.create(name="Books", slug="books")
    rows = [
        # key, sku, slug, name, price, category, active
        ("tee", "TEE-1", "plain-tee", "Plain tee", "12.50", shirts, True),
        ("oxford", "SHIRT-2", "oxford-shirt", "Oxford shirt", "49.00", shirts, True),
        ("novel", "BOOK-1", "a-novel", "A novel", "18.00", books, True),
        ("retired", "BOOK-2", "old-atlas", "Old atlas", "30.00", books, False),
    ]
    products = {
        key: Product.objects.create(
            sku=sku, slug=slug, name=name, price=Decimal(price), category=category,
            is_active=active, description="Cotton t-shirt" if key == "tee" else "",
        )
        for key, sku, slug, name, price, category, active in rows
    }  # fmt: skip
    ProductImage.objects.create(product=products["tee"], url="https://img.example/tee.jpg")
    ProductAttribute.objects.create(product=products["tee"], name="colour", value="white")
    return {"clothing": clothing, "shirts": shirts, "books": books, **products}


@pytest.fixture
def shop(catalog) -> dict[str, object]:
    """The catalog plus two warehouses holding stock, and a shipping method."""
    near = Warehouse.objects.create(code="NEAR", name="Near", city="Berlin", priority=0)
    far = Warehouse.objects.create(code="FAR", name="Far", city="Munich", priority=1)
    levels = {
        "tee_near": StockLevel.objects.create(product=catalog["tee"], warehouse=near, quantity=3),
        "tee_far": StockLevel.objects.create(product=catalog["tee"], warehouse=far, quantity=10),
        "novel_near": StockLevel.objects.create(
            product=catalog["novel"], warehouse=near, quantity=50
        ),
    }
    standard = ShippingMethod.objects.create(
        code="standard", name="Standard", price=Decimal("4.90")
    )
    return {**catalog, "near": near, "far": far, "standard": standard, **levels}


@pytest.fixture
def shopper(db) -> dict[str, object]:
    """A registered customer with one address, and an API client using their token."""
    user = get_user_model().objects.create_user("ada", "ada@example.com", "pw-long-enough")
    address = user.customer.addresses.create(
        full_name="Ada L", line1="1 Analytical Row", city="London", postcode="N1", country="GB"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return {"user": user, "customer": user.customer, "address": address, "client": client}


@pytest.fixture
def staff_api(db) -> APIClient:
    staff = get_user_model().objects.create_user("boss", "boss@example.com", "pw", is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    return client
