"""The monolith's catalog reaches the catalog service through outbox, relay, Kafka, consumer.

Real PostgreSQL (two databases), a real Kafka-protocol broker (Tansu), real processes that are
killed with SIGKILL mid-flight. After every story the two databases hold the same rows and
`cdc_reconcile` reports zero drift.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connections, transaction

from monolith.catalog.models import Category, Product, ProductAttribute, ProductImage
from tests.cdc.conftest import MONOLITH
from tests.cdc.harness import query

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]

products = Product.objects.db_manager(MONOLITH)
categories = Category.objects.db_manager(MONOLITH)


def assert_no_drift(pipeline) -> None:
    report = pipeline.reconcile()
    assert report["drifted"] == 0, report
    assert sum(t["source_rows"] for t in report["tables"]) > 0


def outbox_backlog(pipeline) -> int:
    return query(
        pipeline.monolith_url,
        "SELECT COUNT(*) FROM strangler_cdc_outbox WHERE published_at IS NULL",
    )[0][0]


def make_products(category: Category, prefix: str, count: int) -> list[Product]:
    return products.bulk_create(
        [
            Product(
                sku=f"{prefix}-{i}",
                slug=f"{prefix.lower()}-{i}",
                name=f"{prefix} item {i}",
                price=Decimal("10.00") + i,
                category=category,
            )
            for i in range(count)
        ]
    )


def test_orm_bulk_and_raw_sql_changes_reach_the_service(pipeline):
    shirts = categories.create(name="Shirts", slug="shirts")
    books = categories.create(name="Books", slug="books", parent=None)
    tee = products.create(
        sku="TEE-1", slug="tee", name="Tee", price=Decimal("12.50"), category=shirts
    )
    tee.name = "Plain tee"
    tee.save()
    ProductImage.objects.using(MONOLITH).create(product=tee, url="https://img/tee.png")
    ProductAttribute.objects.using(MONOLITH).create(product=tee, name="colour", value="red")
    batch = make_products(books, "BOOK", 50)
    products.filter(sku__startswith="BOOK").update(price=Decimal("9.99"))
    for product in batch[:10]:
        product.name = product.name.upper()
    products.bulk_update(batch[:10], ["name"])
    products.filter(sku__in=["BOOK-48", "BOOK-49"]).delete()
    with connections[MONOLITH].cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET is_active = false WHERE sku = 'BOOK-0'")
        cursor.execute("DELETE FROM catalog_product WHERE sku = 'BOOK-47'")
    with pytest.raises(RuntimeError), transaction.atomic(using=MONOLITH):
        products.filter(sku="TEE-1").update(name="rolled back")
        raise RuntimeError("the change above must never reach the service")

    pipeline.wait_converged()
    service = dict(query(pipeline.service_url, "SELECT sku, name FROM catalog_product"))
    assert service["TEE-1"] == "Plain tee"
    assert service["BOOK-3"] == "BOOK ITEM 3"
    assert "BOOK-47" not in service and "BOOK-49" not in service
    assert query(
        pipeline.service_url, "SELECT price FROM catalog_product WHERE sku = 'BOOK-5'"
    ) == [(Decimal("9.99"),)]
    # Applied events never echo: the service's own outbox stays empty.
    assert query(pipeline.service_url, "SELECT COUNT(*) FROM strangler_cdc_outbox") == [(0,)]
    assert_no_drift(pipeline)
