"""Relays share the outbox: a batch locks the key shards of the rows it claims, the oldest
first, and no others, so another relay's batch gets the rows of the other shards.

PostgreSQL only (SQLite runs one relay); no broker needed.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from strangler.cdc import conf
from strangler.cdc.models import OutboxEvent
from strangler.cdc.relay import ADVISORY_LOCK_CLASS, Relay

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="shard locks: PostgreSQL"),
]


def test_a_batch_locks_only_the_shards_of_the_rows_it_claims():
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            app_label="catalog", table_name="catalog_product", row_key=str(i), op="c", ts_ms=1
        )
        for i in range(1, 5001)
    )
    oldest = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True)[:5])
    with transaction.atomic(), connection.cursor() as cursor:
        claimed = Relay(conf.current()).claim(cursor, 5)
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND pid = pg_backend_pid()",
            [ADVISORY_LOCK_CLASS],
        )
        shards = cursor.fetchone()[0]
    assert [row.id for row in claimed] == oldest
    assert shards <= 5
