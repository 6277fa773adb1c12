"""A shopper fills a cart and checks out; every app downstream plays its part."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from monolith.inventory.models import StockLevel, StockReservation
from monolith.notifications.models import Notification
from monolith.orders.models import Order
from monolith.promotions.models import Voucher
from monolith.reporting.models import DailySales
from monolith.shipping.models import Shipment
from tests.monolith.journeys import check_out, fill_cart

pytestmark = pytest.mark.django_db


def reserved(level) -> tuple[int, int]:
    level = StockLevel.objects.get(pk=level.pk)
    return level.quantity, level.reserved


def test_cart_prices_items_and_refuses_more_than_stock(shop, shopper):
    cart = fill_cart(shopper["client"], (shop["tee"], 2), (shop["novel"], 1))
    assert [(i["sku"], i["quantity"], i["line_total"]) for i in cart["items"]] == [
        ("TEE-1", 2, "25.00"),
        ("BOOK-1", 1, "18.00"),
    ]
    assert cart["subtotal"] == "43.00"
    too_many = shopper["client"].post(
        "/api/v1/cart/items", {"product": shop["tee"].id, "quantity": 12}
    )
    assert too_many.status_code == 400
    assert "only 13 units of TEE-1" in too_many.json()["quantity"][0]


def test_anonymous_shopper_has_no_cart(api, db):
    assert api.get("/api/v1/cart").status_code == 401


def test_checkout_reserves_stock_charges_ships_and_emails(
    shop, shopper, django_capture_on_commit_callbacks, mailoutbox
):
    fill_cart(shopper["client"], (shop["tee"], 5), (shop["novel"], 1))

    response = check_out(shopper, django_capture_on_commit_callbacks)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "paid"
    assert body["total"] == "85.40"  # 5 x 12.50 + 18.00 + 4.90 shipping
    assert [h["to_status"] for h in body["history"]] == ["placed", "paid"]
    assert body["payment"]["status"] == "captured"
    # order_placed -> inventory reserved 3 in the nearest warehouse, then 2 in the far one.
    assert reserved(shop["tee_near"]) == (3, 3)
    assert reserved(shop["tee_far"]) == (10, 2)
    assert reserved(shop["novel_near"]) == (50, 1)
    order = Order.objects.get(number=body["number"])
    assert order.reservations.filter(status=StockReservation.Status.ACTIVE).count() == 3
    # payment_captured -> shipping created a pending shipment from the first warehouse.
    shipment = Shipment.objects.get(order=order)
    assert (shipment.status, shipment.warehouse.code) == ("pending", "NEAR")
    # Celery tasks e-mailed the confirmation and the shipment notice after commit.
    to_ada = [m for m in mailoutbox if m.to == ["ada@example.com"]]
    assert [m.subject for m in to_ada] == [
        f"Your order {order.number}",
        f"Order {order.number}: shipment pending",
    ]
    assert "5 x Plain tee @ 12.50" in to_ada[0].body
    # Each e-mail is recorded against what it is about (a generic relation).
    kinds = {n.kind: n.subject_object for n in Notification.objects.all()}
    assert kinds["order_confirmation"] == order
    assert kinds["shipment_pending"] == shipment
    # Reporting refreshed the day's materialized figures.
    today = DailySales.objects.get(day=order.placed_at.date())
    assert (today.orders, today.items, today.revenue) == (1, 6, Decimal("85.40"))
    # The cart is spent and the customer earned loyalty points.
    assert shopper["client"].get("/api/v1/cart").json()["items"] == []
    assert shopper["client"].get("/api/v1/customers/me").json()["loyalty_points"] == 85


def test_declined_card_gives_the_stock_back(
    shop, shopper, django_capture_on_commit_callbacks, mailoutbox
):
    fill_cart(shopper["client"], (shop["tee"], 2))

    response = check_out(shopper, django_capture_on_commit_callbacks, token="tok_declined")

    assert response.status_code == 402
    assert response.json()["status"] == "payment_failed"
    assert reserved(shop["tee_near"]) == (3, 0)
    assert not Shipment.objects.exists()
    cart = shopper["client"].get("/api/v1/cart").json()
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [("TEE-1", 2)]  # retry possible


def test_checkout_of_vanished_stock_is_a_conflict_and_changes_nothing(
    shop, shopper, django_capture_on_commit_callbacks
):
    fill_cart(shopper["client"], (shop["novel"], 5))
    StockLevel.objects.filter(pk=shop["novel_near"].pk).update(quantity=4)

    response = check_out(shopper, django_capture_on_commit_callbacks)

    assert response.status_code == 409
    assert "only 4 of 5 units of BOOK-1" in response.json()["detail"]
    assert not Order.objects.exists()
    assert reserved(shop["novel_near"]) == (4, 0)


def test_voucher_lowers_the_total_and_is_counted(shop, shopper, django_capture_on_commit_callbacks):
    Voucher.objects.create(code="TENOFF", percent_off=Decimal("10"))
    fill_cart(shopper["client"], (shop["novel"], 2))
    cart = shopper["client"].post("/api/v1/cart/voucher", {"code": "tenoff"}).json()
    assert (cart["voucher"], cart["discount"]) == ("TENOFF", "3.60")

    body = check_out(shopper, django_capture_on_commit_callbacks).json()

    assert (body["discount_total"], body["total"]) == ("3.60", "37.30")
    assert Voucher.objects.get(code="TENOFF").times_used == 1


def test_dispatch_takes_reserved_units_off_the_shelf(
    shop, shopper, staff_api, django_capture_on_commit_callbacks, mailoutbox
):
    fill_cart(shopper["client"], (shop["tee"], 2))
    order = check_out(shopper, django_capture_on_commit_callbacks).json()
    shipment = Shipment.objects.get(order__number=order["number"])

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(f"/api/v1/shipments/{shipment.id}/dispatch")

    assert response.status_code == 200
    assert response.json()["status"] == "shipped"
    assert reserved(shop["tee_near"]) == (1, 0)
    assert Order.objects.get(number=order["number"]).status == "shipped"
    assert mailoutbox[-1].subject == f"Order {order['number']}: shipment shipped"


@pytest.mark.parametrize("dispatched", [False, True], ids=["before-dispatch", "after-dispatch"])
def test_full_refund_restores_stock(
    shop, shopper, staff_api, django_capture_on_commit_callbacks, mailoutbox, dispatched
):
    fill_cart(shopper["client"], (shop["tee"], 4))
    order = check_out(shopper, django_capture_on_commit_callbacks).json()
    shipment = Shipment.objects.get(order__number=order["number"])
    if dispatched:
        staff_api.post(f"/api/v1/shipments/{shipment.id}/dispatch")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(
            f"/api/v1/payments/{order['payment']['id']}/refund", {"reason": "changed mind"}
        )

    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "54.90"
    assert reserved(shop["tee_near"]) == (3, 0)
    assert reserved(shop["tee_far"]) == (10, 0)
    assert Order.objects.get(number=order["number"]).status == "refunded"
    expected_shipment = "shipped" if dispatched else "cancelled"
    assert Shipment.objects.get(pk=shipment.pk).status == expected_shipment
    assert mailoutbox[-1].subject == f"Refund for order {order['number']}"


def test_partial_refund_keeps_the_stock_sold(
    shop, shopper, staff_api, django_capture_on_commit_callbacks
):
    fill_cart(shopper["client"], (shop["novel"], 2))
    order = check_out(shopper, django_capture_on_commit_callbacks).json()
    url = f"/api/v1/payments/{order['payment']['id']}/refund"

    assert staff_api.post(url, {"amount": "5.00"}).status_code == 201
    assert staff_api.post(url, {"amount": "100.00"}).status_code == 409

    assert reserved(shop["novel_near"]) == (50, 2)
    payment = shopper["client"].get(f"/api/v1/payments/{order['payment']['id']}").json()
    assert payment["status"] == "partially_refunded"


def test_customers_only_see_their_own_orders(shop, shopper, django_capture_on_commit_callbacks):
    fill_cart(shopper["client"], (shop["novel"], 1))
    order = check_out(shopper, django_capture_on_commit_callbacks).json()
    other = APIClient()
    other.force_authenticate(get_user_model().objects.create_user("eve", "eve@example.com", "x"))

    assert other.get("/api/v1/orders").json()["count"] == 0
    assert other.get(f"/api/v1/orders/{order['id']}").status_code == 404
    assert shopper["client"].get("/api/v1/orders").json()["count"] == 1
