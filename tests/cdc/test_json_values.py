"""JSON columns round-trip exactly (numbers as the database wrote them, JSON null apart from SQL
NULL), and reconcile compares them parsed, naming the columns that differ.

In the test database (PostgreSQL in `make test`): a captured table and its copy, side by side.
"""

from __future__ import annotations

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from strangler.cdc import triggers
from strangler.cdc.apply import apply_events
from strangler.cdc.conf import MappingSpec
from strangler.cdc.envelope import OutboxRow, decode, encode
from strangler.cdc.mapping import TableMapping
from strangler.cdc.models import OutboxEvent
from strangler.cdc.reconcile import TableReconciler

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="jsonb columns"),
]
DOCUMENT = '{"rate": 0.1, "exact": 1.000000000000000000001, "big": 123456789012345678901234}'


def make_models() -> tuple[type[models.Model], type[models.Model]]:
    with isolate_apps("monolith.catalog"):

        class Doc(models.Model):
            data = models.JSONField()
            note = models.JSONField(null=True)

            class Meta:
                app_label = "catalog"
                db_table = "cdc_test_doc"

        class DocCopy(models.Model):
            data = models.JSONField()
            note = models.JSONField(null=True)

            class Meta:
                app_label = "catalog"
                db_table = "cdc_test_doc_copy"

    with connection.cursor() as cursor:
        for table in ("cdc_test_doc", "cdc_test_doc_copy"):
            cursor.execute(
                f"CREATE TABLE {table} (id integer PRIMARY KEY, data jsonb NOT NULL, note jsonb)"
            )
    return Doc, DocCopy


def mapping_onto(model: type[models.Model]) -> TableMapping:
    fields = model._meta.concrete_fields
    return TableMapping(
        spec=MappingSpec("cdc_test_doc", "catalog.DocCopy"),
        model=model,
        columns={f.attname: f for f in fields},
        key_field=model._meta.pk,
        transforms={},
        handler=None,
    )


def relayed() -> list:
    """The outbox rows as a consumer receives them (relay encoding, consumer decoding)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, app_label, table_name, pk, op, txid, ts_ms, before::text, after::text, "
            "schema_version FROM strangler_cdc_outbox ORDER BY id"
        )
        return [decode(encode(OutboxRow(*row)), row[3]) for row in cursor.fetchall()]


def jsonb_text(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, data::text, note::text, note IS NULL FROM {table} ORDER BY id")
        return cursor.fetchall()


def test_json_numbers_and_nulls_arrive_exactly_as_the_source_wrote_them():
    doc, copy = make_models()
    triggers.install(connection, [triggers.captured_table(doc, ())])
    OutboxEvent.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cdc_test_doc VALUES (1, %s, 'null'), (2, 'null', NULL)", [DOCUMENT]
        )

    assert apply_events({"cdc_test_doc": mapping_onto(copy)}, relayed()) == 2

    # JSON null in the NOT NULL column stays JSON null; the nullable column keeps SQL NULL
    # (a row image cannot tell them apart there: Django's own reading of None).
    assert jsonb_text("cdc_test_doc_copy") == [
        (1, jsonb_text("cdc_test_doc")[0][1], None, True),
        (2, "null", None, True),
    ]
    assert "0.1" in jsonb_text("cdc_test_doc_copy")[0][1]
    assert "1.000000000000000000001" in jsonb_text("cdc_test_doc_copy")[0][1]


def test_reconcile_compares_json_parsed_and_names_the_differing_columns():
    doc, copy = make_models()
    triggers.install(connection, [triggers.captured_table(doc, ())])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cdc_test_doc VALUES (1, %s, '[1, 2]'), (2, '{}', NULL)", [DOCUMENT]
        )
    OutboxEvent.objects.exclude(table_name="cdc_test_doc").delete()
    apply_events({"cdc_test_doc": mapping_onto(copy)}, relayed())

    def drift():
        return TableReconciler(mapping_onto(copy), "default", "default", chunk=10).run()

    assert drift().drifted == 0  # converges: a JSON row is not "different" for being JSON
    with connection.cursor() as cursor:
        cursor.execute("""UPDATE cdc_test_doc_copy SET note = '[1, 3]' WHERE id = 1""")
    found = drift()
    assert (found.different, found.different_columns) == ((1,), ("note",))
