"""Celery beat jobs and alerts: unpaid orders expire, parcels leave, low stock is reported."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monolith.cart.services import add, open_cart
from monolith.inventory.models import StockLevel
from monolith.notifications.models import Notification
from monolith.orders.models import Order
from monolith.orders.services import place_order
from monolith.orders.tasks import cancel_unpaid_orders
from monolith.reporting.models import DailySales
from monolith.shipping.models import Shipment
from monolith.shipping.tasks import dispatch_due_shipments
from tests.monolith.journeys import check_out, fill_cart

pytestmark = pytest.mark.django_db


def unpaid_order(shop, shopper, product, quantity) -> Order:
    """An order placed without payment (the shopper closed the tab before paying)."""
    cart = open_cart(shopper["user"])
    add(cart, shop[product], quantity)
    return place_order(cart, shopper["customer"], shopper["address"], shop["standard"])


def test_unpaid_orders_expire_and_give_their_stock_back(shop, shopper):
    order = unpaid_order(shop, shopper, "novel", 4)
    Order.objects.filter(pk=order.pk).update(placed_at=timezone.now() - timedelta(hours=25))
    assert StockLevel.objects.get(pk=shop["novel_near"].pk).reserved == 4

    assert cancel_unpaid_orders.delay(older_than_hours=24).get() == 1

    order.refresh_from_db()
    assert order.status == "cancelled"
    assert order.history.last().note == "not paid in time"
    assert StockLevel.objects.get(pk=shop["novel_near"].pk).reserved == 0
    # reporting recomputed that day (the task was called by name, not imported)
    assert DailySales.objects.filter(day=order.placed_at.date(), orders=0).exists()


def test_recent_unpaid_orders_are_left_alone(shop, shopper):
    unpaid_order(shop, shopper, "novel", 1)
    assert cancel_unpaid_orders.delay(older_than_hours=24).get() == 0


def test_customer_can_cancel_an_unpaid_order_but_not_a_paid_one(
    shop, shopper, django_capture_on_commit_callbacks
):
    order = unpaid_order(shop, shopper, "novel", 2)
    client = shopper["client"]

    cancelled = client.post(f"/api/v1/orders/{order.id}/cancel", {"reason": "wrong size"})

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/orders/{order.id}/cancel").status_code == 409


def test_due_shipments_are_dispatched_by_the_beat_job(
    shop, shopper, django_capture_on_commit_callbacks, mailoutbox
):
    fill_cart(shopper["client"], (shop["novel"], 3))
    check_out(shopper, django_capture_on_commit_callbacks)
    assert dispatch_due_shipments.delay(older_than_minutes=60).get() == 0  # still packing
    Shipment.objects.update(created_at=timezone.now() - timedelta(hours=2))

    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_shipments.delay(older_than_minutes=60).get() == 1

    level = StockLevel.objects.get(pk=shop["novel_near"].pk)
    assert (level.quantity, level.reserved) == (47, 0)
    assert Order.objects.get().status == "shipped"
    assert mailoutbox[-1].subject.endswith("shipment shipped")


def test_reserving_below_the_reorder_level_alerts_the_warehouse(
    shop, shopper, django_capture_on_commit_callbacks, mailoutbox
):
    fill_cart(shopper["client"], (shop["tee"], 1))
    check_out(shopper, django_capture_on_commit_callbacks)

    alerts = [m for m in mailoutbox if m.to == ["warehouse@example.com"]]
    assert [m.subject for m in alerts] == ["Low stock: TEE-1 in NEAR"]
    assert "2 available (3 on hand, 1 reserved)" in alerts[0].body
    alert = Notification.objects.get(kind="low_stock")
    assert alert.subject_object == StockLevel.objects.get(pk=shop["tee_near"].pk)
