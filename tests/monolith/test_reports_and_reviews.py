"""Back-office reports add up against the raw rows; reviews know who bought what."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from monolith.catalog.models import Product
from monolith.core.seeding import seed
from monolith.customers.models import Customer
from monolith.inventory.models import StockLevel
from monolith.orders.models import Order, OrderLine
from monolith.payments.models import Refund
from monolith.reporting.tasks import refresh_daily_sales
from tests.monolith.journeys import check_out, fill_cart

pytestmark = pytest.mark.django_db

SOLD = ["paid", "shipped", "delivered", "refunded"]


@pytest.fixture
def seeded(db):
    return seed(scale=0.05, rng_seed=7)


def test_seed_makes_a_whole_shop(seeded):
    assert seeded == {
        "categories": 40,
        "products": 25,
        "customers": 10,
        "orders": 50,
        "reviews": seeded["reviews"],
    }
    assert 0 < seeded["reviews"] <= 15
    assert Order.objects.filter(shipment__isnull=True).count() == 0
    for order in Order.objects.annotate(lines_total=Sum("lines__line_total")):
        assert order.total == order.lines_total + order.shipping_total


def test_seed_is_deterministic(db):
    def fingerprint():
        orders = Order.objects.order_by("number").values_list("number", "total", "status")
        lines = OrderLine.objects.order_by("order__number", "sku").values_list("sku", "quantity")
        return list(Product.objects.values_list("sku", "price")), list(orders), list(lines)

    with transaction.atomic():
        seed(scale=0.02, rng_seed=3)
        first = fingerprint()
        transaction.set_rollback(True)
    seed(scale=0.02, rng_seed=3)
    assert fingerprint() == first


def test_sales_report_adds_up_to_the_orders(seeded, staff_api):
    start = (timezone.now() - timedelta(days=90)).date()
    body = staff_api.get("/api/v1/reports/sales", {"start": start.isoformat()}).json()

    sold = Order.objects.filter(status__in=SOLD)
    assert body["totals"]["orders"] == sold.count()
    assert Decimal(body["totals"]["revenue"]) == sold.aggregate(s=Sum("total"))["s"]
    assert (
        body["totals"]["items"]
        == OrderLine.objects.filter(order__in=sold).aggregate(s=Sum("quantity"))["s"]
    )
    refunded = Refund.objects.aggregate(s=Sum("amount"))["s"] or Decimal("0")
    assert Decimal(body["totals"]["refunded"]) == refunded
    assert Decimal(body["totals"]["net"]) == Decimal(body["totals"]["revenue"]) - refunded
    assert sum(day["orders"] for day in body["days"]) == body["totals"]["orders"]


def test_stock_report_adds_up_to_the_stock_levels(seeded, staff_api):
    body = staff_api.get("/api/v1/reports/stock").json()
    active = StockLevel.objects.filter(product__is_active=True)
    assert sum(p["on_hand"] for p in body["products"]) == active.aggregate(s=Sum("quantity"))["s"]
    assert body["totals"]["on_hand"] == StockLevel.objects.aggregate(s=Sum("quantity"))["s"]
    assert all(p["available"] == p["on_hand"] - p["reserved"] for p in body["products"])


def test_top_products_are_ranked_by_units_sold(seeded, staff_api):
    rows = staff_api.get("/api/v1/reports/top-products", {"limit": 5}).json()
    assert len(rows) == 5
    assert [r["units"] for r in rows] == sorted((r["units"] for r in rows), reverse=True)
    best = rows[0]
    sold_units = OrderLine.objects.filter(product_id=best["product_id"], order__status__in=SOLD)
    assert best["units"] == sold_units.aggregate(s=Sum("quantity"))["s"]


def test_daily_sales_task_materializes_a_day(seeded):
    day = Order.objects.order_by("placed_at").last().placed_at.date()
    orders = refresh_daily_sales.delay(day.isoformat()).get()
    expected = Order.objects.filter(status__in=SOLD, placed_at__date=day).count()
    assert orders == expected


def test_reports_are_for_staff_only(shopper):
    assert shopper["client"].get("/api/v1/reports/sales").status_code == 403


def test_bad_report_date_is_a_clear_400(staff_api):
    response = staff_api.get("/api/v1/reports/sales", {"start": "last tuesday"})
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()["start"][0]


def test_review_is_verified_only_after_a_purchase(
    shop, shopper, django_capture_on_commit_callbacks
):
    client = shopper["client"]
    unverified = client.post(
        "/api/v1/reviews", {"product": shop["oxford"].id, "rating": 2, "title": "Meh"}
    )
    assert unverified.json()["verified_purchase"] is False

    fill_cart(client, (shop["novel"], 1))
    assert check_out(shopper, django_capture_on_commit_callbacks).status_code == 201
    verified = client.post(
        "/api/v1/reviews", {"product": shop["novel"].id, "rating": 5, "title": "Yes"}
    )
    assert verified.json()["verified_purchase"] is True
    again = client.post(
        "/api/v1/reviews", {"product": shop["novel"].id, "rating": 1, "title": "No"}
    )
    assert again.status_code == 400

    summary = client.get("/api/v1/reviews/summary", {"product": shop["novel"].id}).json()
    assert summary == [{"product": shop["novel"].id, "sku": "BOOK-1", "reviews": 1, "average": 5.0}]


def test_customer_report_agrees_with_each_customers_lifetime_value(seeded, staff_api):
    rows = staff_api.get("/api/v1/reports/customers", {"limit": 5}).json()
    assert len(rows) == 5
    assert [Decimal(r["paid"]) for r in rows] == sorted(
        (Decimal(r["paid"]) for r in rows), reverse=True
    )
    for row in rows:
        customer = Customer.objects.get(pk=row["id"])
        assert Decimal(row["net"]) == customer.lifetime_value()
        assert row["orders"] == customer.orders.count()


def test_product_card_figures_come_from_inventory_and_reviews(shop, shopper):
    shopper["client"].post(
        "/api/v1/reviews", {"product": shop["tee"].id, "rating": 4, "title": "ok"}
    )
    assert shop["tee"].units_available == 13
    assert shop["tee"].average_rating() == 4.0
    assert shop["oxford"].average_rating() is None
