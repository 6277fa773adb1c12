"""Two shoppers race for the last units: one gets them, the other a clear 409, never oversold."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monolith.inventory.models import StockLevel

pytestmark = pytest.mark.postgres


def shopper_client(name: str) -> tuple[APIClient, int]:
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "pw-long-enough")
    address = user.customer.addresses.create(
        full_name=name, line1="1 Street", city="Berlin", postcode="10115"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client, address.id


@pytest.mark.django_db(transaction=True)
def test_last_units_are_sold_once(shop):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE) are what this test is about: PostgreSQL")
    StockLevel.objects.filter(product=shop["tee"]).update(quantity=2)  # 4 units in total
    racers = [shopper_client(f"racer{n}") for n in range(2)]
    for client, _ in racers:
        added = client.post("/api/v1/cart/items", {"product": shop["tee"].id, "quantity": 3})
        assert added.status_code == 201
    start = threading.Barrier(len(racers))
    statuses: list[int] = []

    def race(client: APIClient, address: int) -> None:
        try:
            start.wait()
            body = {"address": address, "shipping_method": "standard", "payment_token": "t"}
            statuses.append(client.post("/api/v1/checkout", body, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race, args=racer) for racer in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [201, 409]
    levels = StockLevel.objects.filter(product=shop["tee"])
    assert sum(level.reserved for level in levels) == 3
    assert all(level.reserved <= level.quantity for level in levels)
