"""Values and keys that COPY's text format escapes reach the service unchanged.

The upsert loads rows by COPY into a session temporary table (apply._staged), and positions
are claimed through the same path: tabs, newlines, backslashes, `\\N`, `\\.`, commas and quotes
in keys and values, arrays with NULLs, JSON with nested quotes. Also: an older event after a
newer one of the same key in one batch, replays, and a batch failing in the middle of its COPY
leave the next batch of the session to apply as usual.

In the test database (PostgreSQL in `make test`): a captured table and its copy, side by side.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.postgres.fields import ArrayField
from django.db import connection, models
from django.test.utils import isolate_apps

from strangler.cdc import triggers
from strangler.cdc.apply import apply_events
from strangler.cdc.conf import MappingSpec
from strangler.cdc.envelope import Envelope, OutboxRow, decode, encode
from strangler.cdc.mapping import TableMapping
from strangler.cdc.models import AppliedPosition, OutboxEvent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY upsert: PostgreSQL"),
]
COLUMNS = (
    "k text PRIMARY KEY, t text, v varchar(20), tags text[], nums integer[], u uuid, j jsonb, "
    "d numeric(12, 4), span interval, ip inet, at timestamptz"
)
ODD = ["a,b", "tab\there", "nl\nx", "cr\rx", "back\\slash", "\\N", "\\.", "", "q\"u'ote", "é€😀"]


def make_models() -> tuple[type[models.Model], type[models.Model]]:
    def fields() -> dict:
        return {
            "k": models.TextField(primary_key=True),
            "t": models.TextField(null=True),
            "v": models.CharField(max_length=20, null=True),
            "tags": ArrayField(models.TextField(null=True), null=True),
            "nums": ArrayField(models.IntegerField(null=True), null=True),
            "u": models.UUIDField(null=True),
            "j": models.JSONField(null=True),
            "d": models.DecimalField(max_digits=12, decimal_places=4, null=True),
            "span": models.DurationField(null=True),
            "ip": models.GenericIPAddressField(null=True),
            "at": models.DateTimeField(null=True),
        }

    made = []
    with isolate_apps("monolith.catalog"):
        for name, table in (("Odd", "cdc_test_odd"), ("OddCopy", "cdc_test_odd_copy")):
            meta = type("Meta", (), {"app_label": "catalog", "db_table": table})
            made.append(
                type(name, (models.Model,), {"__module__": __name__, "Meta": meta, **fields()})
            )
    with connection.cursor() as cursor:
        for table in ("cdc_test_odd", "cdc_test_odd_copy"):
            cursor.execute(f"CREATE TABLE {table} ({COLUMNS})")
    return made[0], made[1]


def mapping_onto(model: type[models.Model]) -> dict[str, TableMapping]:
    fields = model._meta.concrete_fields
    mapping = TableMapping(
        spec=MappingSpec("cdc_test_odd", "catalog.OddCopy"),
        model=model,
        columns={f.attname: f for f in fields},
        key_field=model._meta.pk,
        transforms={},
        handler=None,
    )
    return {"cdc_test_odd": mapping}


def relayed() -> list[Envelope]:
    """The outbox rows as a consumer receives them (relay encoding, consumer decoding)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, app_label, table_name, pk, op, txid, ts_ms, before::text, after::text, "
            "schema_version FROM strangler_cdc_outbox ORDER BY id"
        )
        return [decode(encode(OutboxRow(*row)), row[3]) for row in cursor.fetchall()]


def event(seq: int, key: str, after: dict) -> Envelope:
    row = OutboxRow(seq, "catalog", "cdc_test_odd", key, "u", None, 1, None, json.dumps(after), 1)
    return decode(encode(row), key)


def rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT k, t, v, tags, nums, u, j::text, d, span, ip, at FROM {table} ORDER BY k"
        )
        return cursor.fetchall()


def test_keys_and_values_copy_escapes_arrive_unchanged():
    odd, copy = make_models()
    triggers.install(connection, [triggers.captured_table(odd, ())])
    OutboxEvent.objects.all().delete()
    with connection.cursor() as cursor:
        for i, text in enumerate(ODD):
            cursor.execute(
                "INSERT INTO cdc_test_odd VALUES "
                "(%s, %s, %s, %s, %s, gen_random_uuid(), %s, 12.34, '1 day 02:03:04.5', '::1', "
                "now())",
                [
                    text,
                    text * 3 + "x" * (100_000 if i == 1 else 0),
                    text[:20],
                    [text, None, "NULL", "a b", "{}"],
                    [1, None, i],
                    json.dumps({"text": text, "nested": {"q": '"\\'}}),
                ],
            )
    mappings = mapping_onto(copy)

    assert apply_events(mappings, relayed()) == len(ODD)
    assert rows("cdc_test_odd_copy") == rows("cdc_test_odd")

    created = relayed()
    OutboxEvent.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cdc_test_odd SET t = 'first' WHERE k = 'a,b'")
        cursor.execute("UPDATE cdc_test_odd SET t = 'second' WHERE k = 'a,b'")
        cursor.execute("DELETE FROM cdc_test_odd WHERE k = %s", ["nl\nx"])
    # The newest event of a key first, the older after it, in one batch; then old replays.
    apply_events(mappings, list(reversed(relayed())))
    assert apply_events(mappings, created) == 0
    assert rows("cdc_test_odd_copy") == rows("cdc_test_odd")
    positions = AppliedPosition.objects.filter(source_table="cdc_test_odd")
    assert sorted(positions.values_list("key", flat=True)) == sorted(ODD)


def test_a_batch_failing_mid_copy_leaves_the_session_applying():
    _, copy = make_models()
    mappings = mapping_onto(copy)
    AppliedPosition.objects.create(source_table="cdc_test_odd", key="held", seq=50, op="u")
    good = [event(i + 1, f"k{i:04}\t", {"k": f"k{i:04}\t", "t": "y" * 2000}) for i in range(2000)]
    with pytest.raises(UnicodeEncodeError):  # psycopg formats the last row: a lone surrogate
        apply_events(mappings, [*good, event(3000, "bad", {"k": "bad", "t": "\ud800"})])
    with pytest.raises(Exception, match="NUL"):
        apply_events(mappings, [*good[:5], event(3001, "bad", {"k": "bad", "t": "\x00"})])

    older = event(49, "held", {"k": "held", "t": "older than its position"})
    assert apply_events(mappings, [*good, older]) == len(good)
    assert len(rows("cdc_test_odd_copy")) == len(good)
    assert AppliedPosition.objects.get(source_table="cdc_test_odd", key="held").seq == 50
