"""Snapshot (backfill) and targeted re-emission of rows as op=r events, through the outbox.

Why this is correct while the monolith keeps writing: each chunk runs in one transaction that
first locks the chunk's rows (`FOR SHARE` on PostgreSQL; SQLite has one writer at a time) and
then writes their current images to the outbox. The event's position (outbox id) is therefore
drawn after every committed change of those rows and before any later one, exactly as if the
snapshot were one more writer of each row. Consumers order by position, so a snapshot event
can neither overwrite a newer change nor be overwritten by an older one. Progress is stored in
the same transaction, so an interrupted snapshot resumes at the next chunk. (Debezium's
incremental snapshots and DBLog reach the same property with watermarks in the log; having
the snapshot write through the outbox gives it for free.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from strangler.cdc.models import SnapshotProgress
from strangler.cdc.running import Stopper
from strangler.cdc.triggers import (
    PG_NOW_MS,
    SQLITE_NOW_MS,
    CapturedTable,
    now_ms_sql,
    recorded_table,
    sqlite_json,
)

OUTBOX_COLUMNS = "app_label, table_name, pk, op, txid, ts_ms, before, after, schema_version"


class SnapshotError(Exception):
    """The table cannot be snapshotted (not captured in this database)."""


@dataclass(frozen=True)
class SnapshotResult:
    table: str
    rows: int
    chunks: int
    done: bool
    resumed_after: Any


def _q(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def table_of(name: str) -> str:
    """The table of a model label ("catalog.Product"); a table name is returned as is."""
    from django.apps import apps

    if "." not in name:
        return name
    try:
        return str(apps.get_model(name)._meta.db_table)
    except (LookupError, ValueError):
        return name


def captured(connection: BaseDatabaseWrapper, name: str) -> CapturedTable:
    """The capture facts of a table, named by table or by model label."""
    table_name = table_of(name)
    table = recorded_table(connection, table_name)
    if table is None:
        named = table_name if table_name == name else f"{table_name} ({name})"
        raise SnapshotError(
            f"table {named!r} is not captured in database {connection.alias!r}: add its "
            "model to STRANGLER_CDC['capture'] and run `manage.py migrate` (or cdc_triggers)."
        )
    return table


def lock_keys(
    connection: BaseDatabaseWrapper, table: CapturedTable, keys: Sequence[Any]
) -> list[Any]:
    """Lock the rows of `keys` that exist (PostgreSQL) and return those keys."""
    if not keys:
        return []
    key = _q(connection, table.key_column)
    marks = ",".join("%s" for _ in keys)
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key} FROM {_q(connection, table.table)} WHERE {key} IN ({marks}) "
            f"ORDER BY {key}{lock}",
            list(keys),
        )
        return [row[0] for row in cursor.fetchall()]


def _next_keys(
    connection: BaseDatabaseWrapper, table: CapturedTable, after: Any, limit: int
) -> list[Any]:
    key = _q(connection, table.key_column)
    where = f"WHERE {key} > %s " if after is not None else ""
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key} FROM {_q(connection, table.table)} {where}ORDER BY {key} LIMIT %s{lock}",
            [*([after] if after is not None else []), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def emit_reads(connection: BaseDatabaseWrapper, table: CapturedTable, keys: Sequence[Any]) -> int:
    """Write op=r events with the current images of `keys` (already locked by the caller)."""
    if not keys:
        return 0
    key = f"t.{_q(connection, table.key_column)}"
    marks = ",".join("%s" for _ in keys)
    if connection.vendor == "postgresql":
        select = (
            f"SELECT %s, %s, {key}::text, 'r', txid_current(), {PG_NOW_MS}, NULL, "
            "strangler_cdc_natural(to_jsonb(t) - %s::text[], %s::text[]), 1"
        )
        params: list[Any] = [
            table.app_label,
            table.table,
            list(table.exclude),
            list(table.content_type_columns),
        ]
    else:
        select = (
            f"SELECT %s, %s, CAST({key} AS TEXT), 'r', NULL, {SQLITE_NOW_MS}, NULL, "
            f"{sqlite_json(table, 't')}, 1"
        )
        params = [table.app_label, table.table]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO strangler_cdc_outbox ({OUTBOX_COLUMNS}) {select} "
            f"FROM {_q(connection, table.table)} AS t WHERE {key} IN ({marks}) ORDER BY {key}",
            [*params, *keys],
        )
        return len(keys)


def emit_deletes(connection: BaseDatabaseWrapper, table: CapturedTable, keys: Sequence[Any]) -> int:
    """Write op=d events for keys that no longer exist in the source."""
    now = now_ms_sql(connection.vendor)
    txid = "txid_current()" if connection.vendor == "postgresql" else "NULL"
    with connection.cursor() as cursor:
        for value in keys:
            cursor.execute(
                f"INSERT INTO strangler_cdc_outbox ({OUTBOX_COLUMNS}) "
                f"VALUES (%s, %s, %s, 'd', {txid}, {now}, %s, NULL, 1)",
                [
                    table.app_label,
                    table.table,
                    str(value),
                    json.dumps({table.key_column: value}, default=str),
                ],
            )
    return len(keys)


def reemit(using: str, table_name: str, keys: Sequence[Any]) -> tuple[int, int]:
    """Re-emit exactly `keys`: op=r for rows that exist, op=d for rows that do not."""
    connection = connections[using]
    table = captured(connection, table_name)
    with transaction.atomic(using=using):
        present = lock_keys(connection, table, keys)
        found = {str(k) for k in present}
        absent = [k for k in keys if str(k) not in found]
        return emit_reads(connection, table, present), emit_deletes(connection, table, absent)


def snapshot(
    using: str,
    table_name: str,
    chunk_size: int = 1000,
    restart: bool = False,
    stopper: Stopper | None = None,
) -> SnapshotResult:
    """Emit every row of a captured table as op=r events, chunk by chunk, resumably."""
    connection = connections[using]
    table = captured(connection, table_name)
    table_name = table.table
    progress, _ = SnapshotProgress.objects.using(using).get_or_create(table_name=table_name)
    if restart or progress.done:
        progress.last_key, progress.rows, progress.done = None, 0, False
        progress.save(using=using)
    resumed_after = json.loads(progress.last_key) if progress.last_key else None
    after, chunks = resumed_after, 0
    while not (stopper and stopper.stopped):
        with transaction.atomic(using=using):
            keys = _next_keys(connection, table, after, chunk_size)
            emitted = emit_reads(connection, table, keys)
            if keys:
                after = keys[-1]
                progress.last_key = json.dumps(after, default=str)
            progress.rows += emitted
            progress.done = len(keys) < chunk_size
            progress.save(using=using)
        chunks += 1
        if progress.done:
            break
    return SnapshotResult(
        table=table_name,
        rows=progress.rows,
        chunks=chunks,
        done=progress.done,
        resumed_after=resumed_after,
    )
