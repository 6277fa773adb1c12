"""Deterministic demo data for every app, written with bulk inserts so 10k orders take seconds."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from monolith.catalog.models import Category, Product, ProductAttribute, ProductImage
from monolith.core.money import quantize
from monolith.customers.models import Address, Customer
from monolith.inventory.models import StockLevel, Warehouse
from monolith.orders.models import Order, OrderLine, OrderStatusHistory
from monolith.payments.models import Payment, Refund
from monolith.promotions.models import Discount, Voucher
from monolith.reviews.models import Review
from monolith.shipping.models import Shipment, ShippingMethod, TrackingEvent
from monolith.shipping.services import tracking_number

TREE = {
    "Clothing": ["Shirts", "Trousers", "Jackets", "Socks"],
    "Shoes": ["Sneakers", "Boots", "Sandals", "Slippers"],
    "Books": ["Novels", "Cookbooks", "Travel", "Science"],
    "Electronics": ["Headphones", "Cables", "Chargers", "Speakers"],
    "Home": ["Kitchen", "Lighting", "Bedding", "Storage"],
    "Garden": ["Tools", "Seeds", "Planters", "Furniture"],
    "Toys": ["Puzzles", "Blocks", "Dolls", "Games"],
    "Sports": ["Running", "Cycling", "Yoga", "Camping"],
}
ADJECTIVES = ["Classic", "Urban", "Eco", "Pro", "Lite", "Vintage", "Smart", "Cosy", "Rapid", "Bold"]
COLOURS = ["black", "white", "red", "blue", "green", "grey", "yellow"]
SIZES = ["XS", "S", "M", "L", "XL"]
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("Munich", "80331"), ("Cologne", "50667")]
WAREHOUSES = [
    ("BER", "Berlin hub", "Berlin"),
    ("HAM", "Hamburg port", "Hamburg"),
    ("MUC", "Munich south", "Munich"),
]
METHODS = [
    ("standard", "Standard", "4.90", 3),
    ("express", "Express", "9.90", 1),
    ("pickup", "Pick-up point", "0.00", 4),
]
SEED_PASSWORD = "shop-password"  # every seeded customer's password (demo data only)
BATCH = 2000


@dataclass(frozen=True)
class Sizes:
    """How many rows of each kind `--scale` asks for."""

    products: int
    customers: int
    orders: int
    reviews: int

    @classmethod
    def for_scale(cls, scale: float) -> Sizes:
        return cls(
            products=max(20, round(500 * scale)),
            customers=max(5, round(200 * scale)),
            orders=max(0, round(1000 * scale)),
            reviews=max(0, round(300 * scale)),
        )


def seed(scale: float, rng_seed: int = 42) -> dict[str, int]:
    """Fill an empty shop; the same arguments always produce the same rows."""
    rng = random.Random(rng_seed)
    sizes = Sizes.for_scale(scale)
    with transaction.atomic():
        categories = _categories()
        products = _products(rng, categories, sizes.products)
        warehouses = _warehouses()
        _stock(rng, products, warehouses)
        methods = _shipping_methods()
        _promotions(products, categories)
        customers, addresses = _customers(rng, sizes.customers)
        orders = _orders(rng, sizes.orders, products, customers, addresses, methods, warehouses)
        reviews = _reviews(rng, sizes.reviews, products, customers)
    return {
        "categories": len(categories),
        "products": len(products),
        "customers": len(customers),
        "orders": orders,
        "reviews": reviews,
    }


def _categories() -> list[Category]:
    roots = Category.objects.bulk_create(
        Category(name=name, slug=name.lower(), description=f"All {name.lower()}") for name in TREE
    )
    children = Category.objects.bulk_create(
        Category(name=child, slug=f"{root.slug}-{child.lower()}", parent=root)
        for root in roots
        for child in TREE[root.name]
    )
    return roots + children


def _products(rng: random.Random, categories: list[Category], count: int) -> list[Product]:
    leaves = [c for c in categories if c.parent_id is not None]
    products = []
    for i in range(1, count + 1):
        category = leaves[i % len(leaves)]
        name = f"{rng.choice(ADJECTIVES)} {category.name.rstrip('s')} {i}"
        products.append(
            Product(
                sku=f"SKU-{i:06d}",
                slug=f"{name.lower().replace(' ', '-')}",
                name=name,
                description=f"{name}, a {rng.choice(COLOURS)} favourite in {category.name}.",
                price=quantize(Decimal(rng.randint(199, 19999)) / 100),
                is_active=rng.random() > 0.03,
                category=category,
            )
        )
    products = Product.objects.bulk_create(products, batch_size=BATCH)
    ProductImage.objects.bulk_create(
        (
            ProductImage(
                product=p,
                url=f"https://img.example.com/{p.sku}/{n}.jpg",
                alt_text=p.name,
                position=n,
            )
            for p in products
            for n in range(1 + p.id % 2)
        ),
        batch_size=BATCH,
    )
    ProductAttribute.objects.bulk_create(
        (
            ProductAttribute(product=p, name=name, value=rng.choice(values))
            for p in products
            for name, values in (("colour", COLOURS), ("size", SIZES))
        ),
        batch_size=BATCH,
    )
    return products


def _warehouses() -> list[Warehouse]:
    return Warehouse.objects.bulk_create(
        Warehouse(code=code, name=name, city=city, priority=n)
        for n, (code, name, city) in enumerate(WAREHOUSES)
    )


def _stock(rng: random.Random, products: list[Product], warehouses: list[Warehouse]) -> None:
    StockLevel.objects.bulk_create(
        (
            StockLevel(product=p, warehouse=w, quantity=rng.randint(40, 400), reorder_level=10)
            for p in products
            for w in rng.sample(warehouses, 2)
        ),
        batch_size=BATCH,
    )


def _shipping_methods() -> list[ShippingMethod]:
    return ShippingMethod.objects.bulk_create(
        ShippingMethod(code=code, name=name, price=Decimal(price), estimated_days=days)
        for code, name, price, days in METHODS
    )


def _promotions(products: list[Product], categories: list[Category]) -> None:
    Voucher.objects.bulk_create(
        [
            Voucher(code="WELCOME10", percent_off=Decimal("10")),
            Voucher(code="FIVEOFF", amount_off=Decimal("5.00"), min_order_total=Decimal("30")),
            Voucher(code="SPRING20", percent_off=Decimal("20"), max_uses=1000),
        ]
    )
    sale = Discount.objects.create(name="Winter sale", percent_off=Decimal("15"))
    sale.categories.set(c for c in categories if c.slug.startswith("clothing-"))
    picks = Discount.objects.create(name="Staff picks", percent_off=Decimal("5"))
    picks.products.set(products[::25])


def _customers(rng: random.Random, count: int) -> tuple[list[Customer], list[Address]]:
    User = get_user_model()
    password = make_password(SEED_PASSWORD, salt="seeded")
    users = User.objects.bulk_create(
        (
            User(
                username=f"customer{i}",
                email=f"customer{i}@example.com",
                first_name=f"Customer{i}",
                password=password,
            )
            for i in range(1, count + 1)
        ),
        batch_size=BATCH,
    )
    staff = User(username="staff", email="staff@example.com", is_staff=True, is_superuser=True)
    staff.password = make_password("staff-password", salt="seeded")
    staff.save()
    customers = Customer.objects.bulk_create(
        (Customer(user=u, marketing_opt_in=rng.random() < 0.4) for u in users), batch_size=BATCH
    )
    addresses = Address.objects.bulk_create(
        (
            Address(
                customer=c,
                full_name=f"Customer {n}",
                line1=f"{rng.randint(1, 200)} Main Street",
                city=(city := rng.choice(CITIES))[0],
                postcode=city[1],
                is_default=True,
            )
            for n, c in enumerate(customers, start=1)
        ),
        batch_size=BATCH,
    )
    return customers, addresses


def _orders(rng, count, products, customers, addresses, methods, warehouses) -> int:
    """Historical orders: paid, mostly shipped or delivered, a few refunded."""
    today = datetime.combine(
        timezone.now().date(), time(0, 0), tzinfo=timezone.get_current_timezone()
    )
    sellable = [p for p in products if p.is_active]
    orders, baskets = [], []
    for i in range(1, count + 1):
        n = rng.randrange(len(customers))
        method = rng.choice(methods)
        basket = [(p, rng.randint(1, 3)) for p in rng.sample(sellable, rng.randint(1, 4))]
        subtotal = sum((p.price * q for p, q in basket), Decimal("0"))
        status = rng.choices(
            [
                Order.Status.DELIVERED,
                Order.Status.SHIPPED,
                Order.Status.PAID,
                Order.Status.REFUNDED,
            ],
            weights=[70, 15, 10, 5],
        )[0]
        orders.append(
            Order(
                number=f"SEED-{i:08d}",
                customer=customers[n],
                status=status,
                subtotal=subtotal,
                shipping_total=method.price,
                total=subtotal + method.price,
                shipping_address=addresses[n],
                shipping_method=method,
                placed_at=today - timedelta(minutes=rng.randint(0, 90 * 24 * 60)),
            )
        )
        baskets.append(basket)
    orders = Order.objects.bulk_create(orders, batch_size=BATCH)
    OrderLine.objects.bulk_create(
        (
            OrderLine(
                order=o,
                product=p,
                sku=p.sku,
                name=p.name,
                quantity=q,
                unit_price=p.price,
                line_total=p.price * q,
            )
            for o, basket in zip(orders, baskets, strict=True)
            for p, q in basket
        ),
        batch_size=BATCH,
    )
    OrderStatusHistory.objects.bulk_create(
        (
            OrderStatusHistory(order=o, to_status=o.status, note="seeded", created_at=o.placed_at)
            for o in orders
        ),
        batch_size=BATCH,
    )
    payments = Payment.objects.bulk_create(
        (
            Payment(
                order=o,
                amount=o.total,
                currency=o.currency,
                gateway="fake",
                gateway_reference=f"ch_seed_{o.number}",
                captured_at=o.placed_at,
                status=Payment.Status.REFUNDED
                if o.status == Order.Status.REFUNDED
                else Payment.Status.CAPTURED,
            )
            for o in orders
        ),
        batch_size=BATCH,
    )
    Refund.objects.bulk_create(
        (
            Refund(payment=p, amount=p.amount, reason="seeded return")
            for p in payments
            if p.status == Payment.Status.REFUNDED
        ),
        batch_size=BATCH,
    )
    shipment_status = {
        Order.Status.DELIVERED: Shipment.Status.DELIVERED,
        Order.Status.SHIPPED: Shipment.Status.SHIPPED,
        Order.Status.PAID: Shipment.Status.PENDING,
        Order.Status.REFUNDED: Shipment.Status.CANCELLED,
    }
    shipments = Shipment.objects.bulk_create(
        (
            Shipment(
                order=o,
                method=o.shipping_method,
                warehouse=warehouses[o.id % len(warehouses)],
                status=shipment_status[o.status],
                tracking_number=tracking_number(o.number),
                address=o.shipping_address.one_line(),
                shipped_at=o.placed_at + timedelta(days=1)
                if o.status in ("shipped", "delivered")
                else None,
                delivered_at=o.placed_at + timedelta(days=3) if o.status == "delivered" else None,
            )
            for o in orders
        ),
        batch_size=BATCH,
    )
    TrackingEvent.objects.bulk_create(
        (TrackingEvent(shipment=s, status=s.status) for s in shipments), batch_size=BATCH
    )
    return len(orders)


def _reviews(rng, count, products, customers) -> int:
    pairs = {(rng.randrange(len(products)), rng.randrange(len(customers))) for _ in range(count)}
    reviews = Review.objects.bulk_create(
        (
            Review(
                product=products[p],
                customer=customers[c],
                rating=rng.choices([1, 2, 3, 4, 5], weights=[5, 5, 15, 35, 40])[0],
                title=rng.choice(["Great", "Okay", "Love it", "Not for me", "Solid buy"]),
            )
            for p, c in sorted(pairs)
        ),
        batch_size=BATCH,
    )
    return len(reviews)
