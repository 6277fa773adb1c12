"""TRUNCATE of a captured table is an event the consumer applies, never a silent no-op.

In the test database (PostgreSQL in `make test`; SQLite has no TRUNCATE, and its `DELETE`
without a WHERE fires the row triggers).
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from monolith.catalog.models import Category, Product, ProductImage
from strangler.cdc import conf
from strangler.cdc.apply import apply_events
from strangler.cdc.envelope import Envelope, OutboxRow, decode, encode
from strangler.cdc.mapping import resolve
from strangler.cdc.models import OutboxEvent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's"),
]


def event(seq: int, op: str, pk: int | None, category: int = 0) -> Envelope:
    key = "" if pk is None else str(pk)
    after = None
    if op != "t":
        stamp = "2026-01-02T03:04:05+00:00"
        after = json.dumps({"id": pk, "sku": f"S{pk}", "slug": f"s{pk}", "name": f"P{pk}",
                            "description": "", "price": "1.00", "currency": "EUR",
                            "is_active": True, "category_id": category, "created_at": stamp,
                            "updated_at": stamp})  # fmt: skip
    row = OutboxRow(seq, "catalog", "catalog_product", key, op, 1, 1, None, after, 1)
    return decode(encode(row), key)


def test_a_truncate_is_captured_for_every_table_it_empties():
    category = Category.objects.create(name="Tea", slug="tea")
    tea = Product.objects.create(sku="T", slug="t", name="Tea", category=category)
    ProductImage.objects.create(product=tea, url="https://img/t.png")
    OutboxEvent.objects.all().delete()

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction has FK checks due
        cursor.execute("TRUNCATE catalog_product CASCADE")

    emptied = set(OutboxEvent.objects.filter(op="t").values_list("table_name", "row_key"))
    assert {("catalog_product", ""), ("catalog_productimage", "")} <= emptied
    assert not OutboxEvent.objects.exclude(op="t").exists()


def test_applying_a_truncate_keeps_only_rows_written_after_it():
    category = Category.objects.create(name="Tea", slug="tea")
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}
    apply_events(mappings, [event(5, "c", 801, category.pk), event(20, "c", 802, category.pk)])
    Product.objects.create(id=803, sku="L", slug="l", name="Local", category=category)

    # The truncate (seq 10) arrives after the create of 802 (seq 20) from another partition.
    assert apply_events(mappings, [event(10, "t", None)]) == 1

    assert sorted(Product.objects.values_list("pk", flat=True)) == [802]
    late = event(7, "u", 801, category.pk)  # older than the truncate, delivered late
    assert apply_events(mappings, [late, event(10, "t", None)]) == 0
    assert sorted(Product.objects.values_list("pk", flat=True)) == [802]
    assert apply_events(mappings, [event(30, "c", 801, category.pk)]) == 1
    assert sorted(Product.objects.values_list("pk", flat=True)) == [801, 802]
