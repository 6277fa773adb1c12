"""A shopper signs up, gets a token, and uses token or session authentication."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from monolith.customers.models import Customer

pytestmark = pytest.mark.django_db


def test_register_returns_a_token_that_authenticates(api):
    response = api.post(
        "/api/v1/customers/register",
        {"username": "grace", "email": "grace@example.com", "password": "long-password-1"},
    )
    assert response.status_code == 201
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/customers/me").json()
    assert (me["username"], me["email"], me["addresses"]) == ("grace", "grace@example.com", [])


def test_registering_a_taken_username_says_so(api, shopper):
    response = api.post(
        "/api/v1/customers/register",
        {"username": "ada", "email": "x@example.com", "password": "long-password-1"},
    )
    assert response.status_code == 400
    assert response.json()["username"] == ["this username is taken"]


def test_token_endpoint_trades_credentials_for_the_same_token(api, shopper):
    response = api.post("/api/v1/auth/token", {"username": "ada", "password": "pw-long-enough"})
    assert response.status_code == 200
    assert response.json()["token"] == shopper["user"].auth_token.key


def test_session_login_works_for_the_browser(shopper):
    client = APIClient()
    assert client.login(username="ada", password="pw-long-enough")
    assert client.get("/api/v1/customers/me").json()["username"] == "ada"


def test_addresses_are_private_to_their_owner(shopper, staff_api):
    created = shopper["client"].post(
        "/api/v1/addresses",
        {"full_name": "Ada", "line1": "2 Engine St", "city": "Leeds", "postcode": "LS1"},
    )
    assert created.status_code == 201
    assert shopper["client"].get("/api/v1/addresses").json()["count"] == 2
    assert staff_api.get("/api/v1/addresses").json()["count"] == 0


def test_loading_a_fixture_keeps_its_own_customer_profile(db, tmp_path):
    fixture = tmp_path / "users.json"
    fixture.write_text(
        '[{"model": "auth.user", "pk": 900, "fields": {"username": "fixture-user",'
        ' "password": "!", "email": "f@example.com"}},'
        ' {"model": "customers.customer", "pk": 900, "fields": {"user": 900, "phone": "123",'
        ' "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}]'
    )
    call_command("loaddata", str(fixture), verbosity=0)
    profiles = Customer.objects.filter(user_id=900)
    assert [(c.pk, c.phone) for c in profiles] == [(900, "123")]
