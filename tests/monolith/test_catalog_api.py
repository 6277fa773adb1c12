"""A shopper browses and filters the catalog over /api/v1/products and /api/v1/categories."""

from datetime import datetime

import pytest

pytestmark = pytest.mark.django_db


def skus(response) -> list[str]:
    return [item["sku"] for item in response.json()["results"]]


def test_product_list_is_paginated_in_id_order(api, catalog):
    response = api.get("/api/v1/products", {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert skus(response) == ["TEE-1", "SHIRT-2"]
    assert body["previous"] is None
    assert "page=2" in body["next"]
    # When the page was read: differs on every call (a real noise source for parity tests).
    again = api.get("/api/v1/products", {"page_size": 2}).json()
    assert body["generated_at"] < again["generated_at"]
    assert datetime.fromisoformat(again["generated_at"]).tzinfo is not None


def test_links_name_the_proxys_host_when_told_to_trust_it(api, catalog, settings):
    settings.USE_X_FORWARDED_HOST = True
    body = api.get("/api/v1/products", {"page_size": 1}, HTTP_X_FORWARDED_HOST="localhost:8080")
    assert body.json()["next"].startswith("http://localhost:8080/api/v1/products?")


def test_product_json_shape_is_the_documented_contract(api, catalog):
    tee = catalog["tee"]
    body = api.get(f"/api/v1/products/{tee.id}").json()
    assert set(body) == {
        "id",
        "sku",
        "slug",
        "name",
        "description",
        "price",
        "currency",
        "is_active",
        "category",
        "images",
        "attributes",
        "created_at",
        "updated_at",
    }
    assert body["price"] == "12.50"
    assert body["currency"] == "EUR"
    assert body["category"] == catalog["shirts"].id
    assert body["images"] == [{"url": "https://img.example/tee.jpg", "alt_text": "", "position": 0}]
    assert body["attributes"] == [{"name": "colour", "value": "white"}]


def test_filter_by_category_price_range_and_activity(api, catalog):
    shirts = catalog["shirts"].id
    assert skus(api.get("/api/v1/products", {"category": shirts})) == ["TEE-1", "SHIRT-2"]
    assert skus(api.get("/api/v1/products", {"category_slug": "books"})) == ["BOOK-1", "BOOK-2"]
    in_range = api.get("/api/v1/products", {"min_price": "15", "max_price": "40"})
    assert skus(in_range) == ["BOOK-1", "BOOK-2"]
    assert skus(api.get("/api/v1/products", {"is_active": "false"})) == ["BOOK-2"]


def test_search_and_ordering(api, catalog):
    assert skus(api.get("/api/v1/products", {"search": "cotton"})) == ["TEE-1"]
    by_price_desc = api.get("/api/v1/products", {"ordering": "-price"})
    assert skus(by_price_desc) == ["SHIRT-2", "BOOK-2", "BOOK-1", "TEE-1"]


def test_categories_tree_and_filters(api, catalog):
    roots = api.get("/api/v1/categories", {"root": "true"}).json()["results"]
    assert [c["slug"] for c in roots] == ["clothing", "books"]
    children = api.get("/api/v1/categories", {"parent": catalog["clothing"].id}).json()
    assert children["results"] == [
        {
            "id": catalog["shirts"].id,
            "name": "Shirts",
            "slug": "shirts",
            "parent": catalog["clothing"].id,
            "description": "",
        }
    ]


def test_anonymous_shopper_cannot_edit_the_catalog(api, catalog):
    response = api.patch(f"/api/v1/products/{catalog['tee'].id}", {"price": "1.00"})
    assert response.status_code in (401, 403)


def test_unknown_product_is_404(api, catalog):
    assert api.get("/api/v1/products/999999").status_code == 404


def test_every_response_carries_a_request_id(api, db):
    minted = api.get("/healthz")["X-Request-ID"]
    assert len(minted) == 32
    assert api.get("/healthz", HTTP_X_REQUEST_ID="from-proxy-1")["X-Request-ID"] == "from-proxy-1"
    assert api.get("/healthz", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"] != "bad id\n"


def test_healthz_reports_the_database(api, db):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_schema_lists_every_public_endpoint(api, db):
    response = api.get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for endpoint in [
        "/api/v1/products",
        "/api/v1/categories",
        "/api/v1/cart",
        "/api/v1/cart/items",
        "/api/v1/checkout",
        "/api/v1/orders",
        "/api/v1/stock",
        "/api/v1/payments/{id}/refund",
        "/api/v1/shipments/{id}/dispatch",
        "/api/v1/reviews",
        "/api/v1/reports/sales",
        "/api/v1/auth/token",
    ]:
        assert endpoint in paths
