"""Two appliers of the same key at once (a consumer that outlived its partitions after a
rebalance, and the partitions' new owner re-reading older events): the newest event wins.

PostgreSQL only (SQLite has one writer at a time); two real connections, one per thread.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from monolith.catalog.models import Category, Product
from strangler.cdc import conf
from strangler.cdc.apply import apply_events
from strangler.cdc.envelope import Envelope, OutboxRow, decode, encode
from strangler.cdc.mapping import resolve
from strangler.cdc.models import AppliedPosition

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers: PostgreSQL"),
]


def product_update(seq: int, category: int, name: str) -> Envelope:
    after = (
        f'{{"id": 701, "sku": "S701", "slug": "s701", "name": "{name}", "description": "", '
        f'"price": 1.5, "currency": "EUR", "is_active": true, "category_id": {category}, '
        '"created_at": "2026-01-02 03:04:05", "updated_at": "2026-01-02 03:04:05"}'
    )
    row = OutboxRow(seq, "catalog", "catalog_product", "701", "u", None, 1, None, after, 1)
    return decode(encode(row), "701")


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_an_older_event_applied_concurrently_with_a_newer_one_does_not_win():
    category = Category.objects.create(name="Tea", slug="tea")
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}
    newer_applied, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def apply(events: list[Envelope], hold: bool) -> None:
        try:
            with transaction.atomic():
                apply_events(mappings, events)
                if hold:  # keep the newer event's transaction open until the older one waits
                    newer_applied.set()
                    release.wait(10)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    newer = threading.Thread(target=apply, args=([product_update(10, category.pk, "newer")], True))
    older = threading.Thread(target=apply, args=([product_update(8, category.pk, "older")], False))
    newer.start()
    assert newer_applied.wait(10)
    older.start()
    deadline = time.monotonic() + 10
    while not waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    newer.join(10)
    older.join(10)

    assert errors == []
    assert Product.objects.get(pk=701).name == "newer"
    assert AppliedPosition.objects.get(source_table="catalog_product", key="701").seq == 10
