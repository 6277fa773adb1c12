"""Capture triggers: every insert, update and delete of a captured table writes an outbox row.

Triggers run inside the writing transaction, so a rolled-back change emits nothing and a
committed one is never lost, whatever wrote it: the ORM, QuerySet.update/delete, bulk_create,
bulk_update, M2M through tables, or raw SQL. Generated from the setting, installed after every
`migrate` (and by `manage.py cdc_triggers`). See docs/cdc.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from strangler.cdc.conf import CaptureSpec
from strangler.cdc.generic import NATURAL_SUFFIX, points_at_content_type

SUPPORTED_VENDORS = frozenset({"postgresql", "sqlite"})
ORIGIN_SETTING = "strangler.cdc_origin"
PG_TRIGGER = "strangler_cdc"

# Checked before the row trigger's function is called: an applied batch costs no PL/pgSQL call
# per row (about 2 to 4 us each, EXPLAIN ANALYZE of a 2,000-row upsert).
PG_NOT_REPLICA = f"coalesce(current_setting('{ORIGIN_SETTING}', true), '') <> 'replica'"

PG_NATURAL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION strangler_cdc_natural(image jsonb, columns text[])
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    col text;
BEGIN
    -- Content type ids differ between databases: the image also carries (app_label, model).
    FOREACH col IN ARRAY coalesce(columns, '{{}}') LOOP
        image := image || jsonb_build_object(col || '{NATURAL_SUFFIX}',
            (SELECT jsonb_build_array(app_label, model) FROM django_content_type
             WHERE id = (image ->> col)::integer));
    END LOOP;
    RETURN image;
END $$;
"""

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION strangler_cdc_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key_column text := TG_ARGV[0];
    excluded text[] := TG_ARGV[2]::text[];
    ct_columns text[] := coalesce(TG_ARGV[3], '{{}}')::text[];
    old_row jsonb;
    new_row jsonb;
    now_ms bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
BEGIN
    -- Changes applied from the other side (reverse flow) must not echo back. The trigger's
    -- WHEN (PG_NOT_REPLICA) skips the call; this covers triggers installed without it.
    IF coalesce(current_setting('{ORIGIN_SETTING}', true), '') = 'replica' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD) - excluded; END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW) - excluded; END IF;
    IF TG_OP = 'UPDATE' AND old_row = new_row THEN
        RETURN NULL;
    END IF;
    IF new_row IS NOT NULL AND cardinality(ct_columns) > 0 THEN
        new_row := strangler_cdc_natural(new_row, ct_columns);
    END IF;
    IF TG_OP = 'UPDATE' AND (old_row ->> key_column) IS DISTINCT FROM (new_row ->> key_column) THEN
        -- A changed primary key is a delete of the old key and a create of the new one.
        INSERT INTO strangler_cdc_outbox
            (app_label, table_name, pk, op, txid, ts_ms, before, after, schema_version)
        VALUES (TG_ARGV[1], TG_TABLE_NAME, old_row ->> key_column, 'd', txid_current(), now_ms,
                old_row, NULL, 1);
        old_row := NULL;
    END IF;
    INSERT INTO strangler_cdc_outbox
        (app_label, table_name, pk, op, txid, ts_ms, before, after, schema_version)
    VALUES (TG_ARGV[1], TG_TABLE_NAME, coalesce(new_row, old_row) ->> key_column,
            CASE WHEN old_row IS NULL THEN 'c' WHEN new_row IS NULL THEN 'd' ELSE 'u' END,
            txid_current(), now_ms, old_row, new_row, 1);
    RETURN NULL;
END $$;
"""

PG_TRUNCATE_TRIGGER = "strangler_cdc_truncate"
PG_TRUNCATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION strangler_cdc_capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('{ORIGIN_SETTING}', true), '') = 'replica' THEN
        RETURN NULL;
    END IF;
    -- One event for the whole table (TRUNCATE fires no row triggers); CASCADE fires this
    -- trigger on every captured table it empties.
    INSERT INTO strangler_cdc_outbox
        (app_label, table_name, pk, op, txid, ts_ms, before, after, schema_version)
    VALUES (TG_ARGV[0], TG_TABLE_NAME, '', 't', txid_current(),
            (extract(epoch from clock_timestamp()) * 1000)::bigint, NULL, NULL, 1);
    RETURN NULL;
END $$;
"""

SQLITE_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
PG_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"


def now_ms_sql(vendor: str) -> str:
    """SQL for the database's clock in ms since the epoch, the clock every outbox row's
    ts_ms is written with: an age computed with it in the same query uses one clock, where
    a reader's own clock running behind the database's makes a backlog look new."""
    return PG_NOW_MS if vendor == "postgresql" else SQLITE_NOW_MS


@dataclass(frozen=True)
class CapturedTable:
    """A table the triggers watch, with the facts the SQL needs."""

    app_label: str
    table: str
    key_column: str
    columns: tuple[str, ...]
    json_columns: frozenset[str]
    exclude: tuple[str, ...]
    content_type_columns: tuple[str, ...] = ()  # foreign keys to ContentType


def captured_tables(specs: Iterable[CaptureSpec]) -> list[CapturedTable]:
    """Resolve the setting's models, plus their auto-created M2M through tables."""
    from django.apps import apps

    tables: list[CapturedTable] = []
    for spec in specs:
        model = apps.get_model(spec.model)
        tables.append(captured_table(model, spec.exclude))
        for m2m in model._meta.local_many_to_many:
            through = m2m.remote_field.through
            if through._meta.auto_created:
                tables.append(captured_table(through, ()))
    return tables


def captured_table(model: type[models.Model], exclude: tuple[str, ...]) -> CapturedTable:
    fields = [f for f in model._meta.concrete_fields if f.column not in exclude]
    return CapturedTable(
        app_label=model._meta.app_label,
        table=model._meta.db_table,
        key_column=model._meta.pk.column,
        columns=tuple(f.column for f in fields),
        json_columns=frozenset(f.column for f in fields if f.get_internal_type() == "JSONField"),
        exclude=exclude,
        content_type_columns=tuple(f.column for f in fields if points_at_content_type(f)),
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def postgresql_sql(table: CapturedTable) -> list[str]:
    excluded = "{" + ",".join(table.exclude) + "}"
    natural = "{" + ",".join(table.content_type_columns) + "}"
    args = ", ".join(_literal(a) for a in (table.key_column, table.app_label, excluded, natural))
    name = _quote(table.table)
    return [
        f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON {name}",
        f"CREATE TRIGGER {PG_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {name} "
        f"FOR EACH ROW WHEN ({PG_NOT_REPLICA}) EXECUTE FUNCTION strangler_cdc_capture({args})",
        f"DROP TRIGGER IF EXISTS {PG_TRUNCATE_TRIGGER} ON {name}",
        f"CREATE TRIGGER {PG_TRUNCATE_TRIGGER} AFTER TRUNCATE ON {name} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION strangler_cdc_capture_truncate("
        f"{_literal(table.app_label)})",
        # Also under session_replication_role = replica (bulk loaders, FK-skipping scripts):
        # our own loop prevention uses ORIGIN_SETTING, not the replication role.
        f"ALTER TABLE {name} ENABLE ALWAYS TRIGGER {PG_TRIGGER}",
        f"ALTER TABLE {name} ENABLE ALWAYS TRIGGER {PG_TRUNCATE_TRIGGER}",
    ]


def _exact_real(value: str) -> str:
    """A REAL that 15 digits (json_object's rendering) would change gets all 17 digits."""
    return (
        f"CASE WHEN typeof({value}) = 'real' AND CAST(printf('%!.15g', {value}) AS REAL) <> "
        f"{value} THEN json(printf('%!.17g', {value})) ELSE {value} END"
    )


def sqlite_json(table: CapturedTable, row: str) -> str:
    parts = []
    for column in table.columns:
        value = f"{row}.{_quote(column)}"
        value = f"json({value})" if column in table.json_columns else _exact_real(value)
        parts.append(f"{_literal(column)}, {value}")
    for column in table.content_type_columns:
        parts.append(
            f"{_literal(column + NATURAL_SUFFIX)}, (SELECT json_array(app_label, model) "
            f"FROM django_content_type WHERE id = {row}.{_quote(column)})"
        )
    return f"json_object({', '.join(parts)})"


SQLITE_SUFFIXES = "iukd"


def sqlite_trigger_name(table: str, suffix: str) -> str:
    return f"strangler_cdc_{table}_{suffix}"


def sqlite_sql(table: CapturedTable) -> list[str]:
    """Four triggers: insert, update keeping the key, update changing it (a delete of the old
    key and a create of the new one, as on PostgreSQL), delete."""
    quiet = "NOT EXISTS (SELECT 1 FROM strangler_cdc_suppress)"
    key = _quote(table.key_column)
    changed = " OR ".join(f"OLD.{_quote(c)} IS NOT NEW.{_quote(c)}" for c in table.columns)
    old, new = sqlite_json(table, "OLD"), sqlite_json(table, "NEW")
    triggers = (
        ("i", "INSERT", quiet, [("NEW", "c", "NULL", new)]),
        (
            "u",
            "UPDATE",
            f"{quiet} AND OLD.{key} IS NEW.{key} AND ({changed})",
            [("NEW", "u", old, new)],
        ),
        (
            "k",
            "UPDATE",
            f"{quiet} AND OLD.{key} IS NOT NEW.{key}",
            [("OLD", "d", old, "NULL"), ("NEW", "c", "NULL", new)],
        ),
        ("d", "DELETE", quiet, [("OLD", "d", old, "NULL")]),
    )
    statements = []
    for suffix, event, when, emits in triggers:
        name = _quote(sqlite_trigger_name(table.table, suffix))
        body = "".join(
            "INSERT INTO strangler_cdc_outbox (app_label, table_name, pk, op, txid, ts_ms, "
            "before, after, schema_version, published_at) VALUES ("
            f"{_literal(table.app_label)}, {_literal(table.table)}, "
            f"CAST({row}.{key} AS TEXT), {_literal(op)}, NULL, "
            f"{SQLITE_NOW_MS}, {before}, {after}, 1, NULL); "
            for row, op, before, after in emits
        )
        statements += [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER {event} ON {_quote(table.table)} WHEN {when} "
            f"BEGIN {body}END",
        ]
    return statements


def install(connection: BaseDatabaseWrapper, tables: Iterable[CapturedTable]) -> list[str]:
    """(Re)create the triggers of `tables` that exist in this database; return their names."""
    existing = set(connection.introspection.table_names())
    installed = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_NATURAL_FUNCTION)
            cursor.execute(PG_FUNCTION)
            cursor.execute(PG_TRUNCATE_FUNCTION)
        for table in tables:
            if table.table not in existing:
                continue
            sql = postgresql_sql(table) if connection.vendor == "postgresql" else sqlite_sql(table)
            for statement in sql:
                cursor.execute(statement)
            _record(cursor, table)
            installed.append(table.table)
    return installed


def _record(cursor: CursorWrapper, table: CapturedTable) -> None:
    cursor.execute("DELETE FROM strangler_cdc_captured WHERE table_name = %s", [table.table])
    cursor.execute(
        "INSERT INTO strangler_cdc_captured "
        "(table_name, app_label, key_column, columns, json_columns, exclude, "
        "content_type_columns) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            table.table,
            table.app_label,
            table.key_column,
            json.dumps(list(table.columns)),
            json.dumps(sorted(table.json_columns)),
            json.dumps(list(table.exclude)),
            json.dumps(list(table.content_type_columns)),
        ],
    )


def recorded_table(connection: BaseDatabaseWrapper, table_name: str) -> CapturedTable | None:
    """The capture facts stored by `install` for a table of this database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT app_label, key_column, columns, json_columns, exclude, content_type_columns "
            "FROM strangler_cdc_captured WHERE table_name = %s",
            [table_name],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    app_label, key_column, columns, json_columns, exclude, content_types = (
        json.loads(v) if isinstance(v, str) and i >= 2 else v for i, v in enumerate(row)
    )
    return CapturedTable(
        app_label=app_label,
        table=table_name,
        key_column=key_column,
        columns=tuple(columns),
        json_columns=frozenset(json_columns),
        exclude=tuple(exclude),
        content_type_columns=tuple(content_types),
    )


def tables_with_triggers(connection: BaseDatabaseWrapper) -> set[str]:
    """Tables of this database that carry enabled capture triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Both triggers: rows and TRUNCATE (an install older than the truncate one counts
            # as missing, and `migrate` completes it).
            cursor.execute(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname IN (%s, %s) AND t.tgenabled <> 'D' "
                "GROUP BY c.relname HAVING COUNT(*) = 2",
                [PG_TRIGGER, PG_TRUNCATE_TRIGGER],
            )
            return {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        names = cursor.fetchall()
    found = {(table, name) for table, name in names}
    # A table counts only with all its triggers (e.g. not one left from an older install).
    return {
        table
        for table, _ in names
        if all((table, sqlite_trigger_name(table, s)) in found for s in SQLITE_SUFFIXES)
    }


def install_after_migrate(sender: object, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: reinstall once per `migrate`, when our own app's turn comes."""
    from django.db import connections

    from strangler.cdc import conf

    if getattr(sender, "label", None) != "strangler_cdc":
        return
    connection = connections[using]
    settings = conf.current()
    if connection.vendor not in SUPPORTED_VENDORS or not settings.capture:
        return
    install(connection, captured_tables(settings.capture))
