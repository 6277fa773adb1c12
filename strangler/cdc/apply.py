"""Idempotent apply of change events to the receiving database.

Each target row's last applied source position lives in `strangler_cdc_position`, written in
the same transaction as the row, so a duplicate or older event is a no-op and replays converge.
Rows are written with one multi-row upsert per table (no model signals, no auto_now), inside
a transaction marked as a replica write so the capture triggers of this database stay silent
(loop prevention for the reverse flow).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from strangler.cdc import generic, jsontext
from strangler.cdc.envelope import TRUNCATE_KEY, Envelope, is_newer, latest_per_key
from strangler.cdc.mapping import TableMapping, plain_type
from strangler.cdc.models import AppliedPosition
from strangler.cdc.triggers import ORIGIN_SETTING

CHUNK = 400
TRUNCATE_LOCK_CLASS = 73_002
POSITION_COLUMNS = (
    ("source_table", "text"),
    ("key", "text"),
    ("seq", "bigint"),
    ("op", "text"),
    ("applied_at", "timestamptz"),
    ("ts_ms", "bigint"),
)
# On PostgreSQL, get_db_prep_save of these field classes (exactly: a subclass may prepare
# otherwise) returns a value of this type unchanged, as `mapping.to_python` produces it.
POSTGRES_AS_IS: dict[type[models.Field], type] = {
    models.DateTimeField: datetime.datetime,
    models.DecimalField: Decimal,
}
# ISO 8601 with an offset and at most microseconds, as to_jsonb writes a timestamptz: text that
# PostgreSQL reads as the very instant datetime.fromisoformat parses from it. (Offset minutes
# and seconds below 60: Python carries "+05:75" over to +06:15, PostgreSQL refuses it.)
ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"[+-][0-9]{2}:[0-5][0-9](:[0-5][0-9])?"
)


@contextlib.contextmanager
def replica_writes(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Mark the writes inside this block as replicated changes (the triggers skip them).

    The mark is lifted on the way out, so a caller's own writes later in the same
    transaction are captured as usual; on error the enclosing atomic block rolls it back.
    Nested blocks leave the mark to the outermost one.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT coalesce(current_setting(%s, true), ''), set_config(%s, 'replica', true)",
                [ORIGIN_SETTING, ORIGIN_SETTING],
            )
            previous = cursor.fetchone()[0]
            yield
            cursor.execute("SELECT set_config(%s, %s, true)", [ORIGIN_SETTING, previous])
        else:
            cursor.execute("INSERT OR IGNORE INTO strangler_cdc_suppress (id) VALUES (1)")
            outermost = cursor.rowcount == 1
            yield
            if outermost:
                cursor.execute("DELETE FROM strangler_cdc_suppress")


def in_values(connection: BaseDatabaseWrapper, values: Sequence[Any]) -> Iterator[tuple[str, list]]:
    """`IN (...)` chunks for SQLite; one `= ANY(array)` for PostgreSQL: (sql, params) pairs."""
    if not values:
        return
    if connection.vendor == "postgresql":
        yield "= ANY(%s)", [list(values)]
        return
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        yield f"IN ({','.join('%s' for _ in chunk)})", chunk


def stored_positions(
    connection: BaseDatabaseWrapper, table: str, keys: Sequence[str]
) -> dict[str, int]:
    """The positions applied so far for `keys` (sorted), locked until the transaction ends.

    Read before a mapping's handler runs; the built-in apply compares in the statement that
    writes them (`claim_positions`). On PostgreSQL two appliers of one key may overlap (a
    consumer that outlived its partitions after a rebalance and their new owner): each key's
    position row is created if missing and locked, in key order, before it is read, so the
    second applier waits and then sees the first one's position instead of overwriting a
    newer row with an older event. (SQLite has one writer at a time.)
    """
    found: dict[str, int] = {}
    lock = ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and keys:
            cursor.execute(
                "INSERT INTO strangler_cdc_position (source_table, key, seq, op) "
                "SELECT %s, k, 0, '' FROM unnest(%s::text[]) AS k "
                "ON CONFLICT (source_table, key) DO NOTHING",
                [table, list(keys)],
            )
            lock = " ORDER BY key FOR UPDATE"
        for condition, params in in_values(connection, keys):
            cursor.execute(
                "SELECT key, seq FROM strangler_cdc_position "
                f"WHERE source_table = %s AND key {condition}{lock}",
                [table, *params],
            )
            found.update(cursor.fetchall())
    return found


def _staged(
    connection: BaseDatabaseWrapper,
    cursor: CursorWrapper,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> str:
    """COPY `rows` into this session's temporary table of `columns`; returns its name.

    psycopg formats COPY rows in C: a third of the client CPU of one array parameter per
    column, which it builds in Python. The table is emptied at commit and by its reader.
    """
    quote = connection.ops.quote_name
    spec = ", ".join(f"{quote(name)} {db_type}" for name, db_type in columns)
    # pg_temp. in every use: a table of the same name earlier on the search_path is never it.
    name = f"pg_temp.strangler_cdc_stage_{hashlib.sha1(spec.encode()).hexdigest()[:16]}"
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({spec}) ON COMMIT DELETE ROWS")
    with connection.wrap_database_errors, cursor.copy(f"COPY {name} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return name


def _upsert(
    connection: BaseDatabaseWrapper,
    db_table: str,
    conflict: Sequence[str],
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    newer: str | None = None,
) -> list[Any]:
    """INSERT ... ON CONFLICT DO UPDATE of many rows; `columns` are (name, database type).

    With `newer` (a column) an existing row is updated only where the new value of that column
    is greater, and the last conflict column of the rows written is returned. PostgreSQL gets
    the rows by COPY (see `_staged`) and one statement inserting them in conflict-key order
    (one lock order for all appliers), SQLite one short statement per row.
    """
    if not rows:
        return []
    quote = connection.ops.quote_name
    names = [name for name, _ in columns]
    cols = ", ".join(quote(c) for c in names)
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in names if c not in conflict)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    target = ", ".join(quote(c) for c in conflict)
    if newer is not None:
        action += f" WHERE {quote(db_table)}.{quote(newer)} < excluded.{quote(newer)}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            stage = _staged(connection, cursor, columns, rows)
            returning = f" RETURNING {quote(conflict[-1])}" if newer is not None else ""
            cursor.execute(
                f"WITH staged AS (DELETE FROM {stage} RETURNING *) "
                f"INSERT INTO {quote(db_table)} ({cols}) SELECT {cols} FROM staged "
                f"ORDER BY {target} ON CONFLICT ({target}) {action}{returning}"
            )
            return [value for (value,) in cursor.fetchall()] if newer is not None else []
        marks = ", ".join("%s" for _ in names)
        statement = (
            f"INSERT INTO {quote(db_table)} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({target}) {action}"
        )
        if newer is None:
            cursor.executemany(statement, [list(row) for row in rows])
            return []
        # The row count, not RETURNING: SQLite has RETURNING from 3.35, Django 5.2 runs on 3.31.
        key = names.index(conflict[-1])
        written = []
        for row in rows:
            cursor.execute(statement, list(row))
            if cursor.rowcount == 1:
                written.append(row[key])
        return written


def _delete(connection: BaseDatabaseWrapper, mapping: TableMapping, keys: Sequence[Any]) -> None:
    quote = connection.ops.quote_name
    column, db_table = quote(mapping.key_field.column), quote(mapping.model._meta.db_table)
    with connection.cursor() as cursor:
        for condition, params in in_values(connection, keys):
            cursor.execute(f"DELETE FROM {db_table} WHERE {column} {condition}", params)


class Refused(Exception):
    """Events whose values the target cannot hold exactly; nothing of the batch was written."""

    def __init__(self, reasons: Mapping[tuple[str, str], str]) -> None:
        super().__init__(f"{len(reasons)} events refused: {next(iter(reasons.values()))}")
        self.reasons = dict(reasons)


def db_value(field: models.Field, value: Any, connection: BaseDatabaseWrapper) -> Any:
    """What the upsert sends for a value that is not sent as is (see `as_is`)."""
    if isinstance(field, models.JSONField):
        return jsontext.db_value(field, value)
    return field.get_db_prep_save(value, connection)


def as_is(field: models.Field, connection: BaseDatabaseWrapper) -> tuple[type, ...]:
    """The types of `field`'s converted values the upsert sends unprepared: None and the plain
    type (mapping.plain_type), and on PostgreSQL those of POSTGRES_AS_IS; none for JSON."""
    if isinstance(field, models.JSONField):
        return ()
    native = POSTGRES_AS_IS.get(type(field)) if connection.vendor == "postgresql" else None
    return tuple(t for t in (type(None), plain_type(field), native) if t is not None)


def iso_source(
    mapping: TableMapping, field: models.Field, connection: BaseDatabaseWrapper
) -> str | None:
    """The source column whose ISO text the upsert sends for `field` instead of its datetime
    (PostgreSQL, a DateTimeField, no transform), or None.

    psycopg would send str() of the datetime parsed from that text: the same instant, at 15
    times the COPY cost of a string (3.8 against 0.26 us a value on the 2-core machine).
    """
    if connection.vendor != "postgresql" or type(field) is not models.DateTimeField:
        return None
    column = next(c for c, f in mapping.columns.items() if f is field)
    return None if column in mapping.transforms else column


def _write_rows(
    connection: BaseDatabaseWrapper, mapping: TableMapping, events: Sequence[Envelope]
) -> dict[str, str]:
    """Upsert the row images and delete the deleted keys of one table; returns refused keys.

    Only the fields a row image carries are written (an update never blanks a target field
    the source does not send); rows are grouped by that field set, normally just one group.
    A row with a value its target column cannot hold exactly is not written: {key: reason}.
    """
    fields = [f for f in mapping.model._meta.concrete_fields if f in mapping.columns.values()]
    names = tuple(f.attname for f in fields)
    prepared = [
        (f.attname, f, as_is(f, connection), iso_source(mapping, f, connection)) for f in fields
    ]
    key = mapping.key_field.attname
    label = mapping.model._meta.label
    groups: dict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
    refused: dict[str, str] = {}
    for event in events:
        if event.op == "d":
            continue
        image, unmapped = generic.remap(
            label, mapping.content_type_fields, event.after or {}, connection.alias
        )
        values, misfits = mapping.exact_values(image, connection)
        misfits = unmapped + misfits
        if misfits:
            refused[event.key] = "; ".join(misfits)
            continue
        if key not in values:
            values[key] = mapping.target_key(event.key)
        row = []
        for name, field, unprepared, iso in prepared:
            if name not in values:
                continue
            value = values[name]
            if iso is not None and type(text := image.get(iso)) is str and ISO.fullmatch(text):
                # `value` is fromisoformat(text) (mapping._datetime): the same instant.
                row.append(text)
            elif type(value) in unprepared:
                row.append(value)
            else:
                row.append(db_value(field, value, connection))
        # A full row image (the usual) has every field: no need to list which.
        present = names if len(row) == len(names) else tuple(filter(values.__contains__, names))
        groups[present].append(row)
    _delete(connection, mapping, [mapping.target_key(e.key) for e in events if e.op == "d"])
    for present, rows in groups.items():
        chosen = [f for f in fields if f.attname in present]
        columns = [(f.column, f.db_type(connection)) for f in chosen]
        _upsert(connection, mapping.model._meta.db_table, [mapping.key_field.column], columns, rows)
    return refused


def claim_positions(
    connection: BaseDatabaseWrapper, table: str, events: Sequence[Envelope]
) -> set[str]:
    """Store the positions of `events` (one per key) that are newer than the stored ones;
    returns their keys: the events to apply, now locked until the transaction ends.

    One statement reads, locks and writes, in key order. Of two overlapping appliers of one
    key (see `stored_positions`) the second waits at its key's row (or at the first one's
    insert of it) and compares with the position the first one committed, so an older event
    never overwrites a newer one. A rollback (refused values) takes the positions back.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    if connection.vendor == "postgresql":
        # psycopg's COPY text for it (str()), made once instead of once per row.
        now = str(now)
    written = _upsert(
        connection,
        "strangler_cdc_position",
        ["source_table", "key"],
        POSITION_COLUMNS,
        [[table, e.key, e.seq, e.op, now, e.ts_ms] for e in events],
        newer="seq",
    )
    return set(written)


def behind(
    connection: BaseDatabaseWrapper, table: str, skipped: Sequence[Envelope]
) -> dict[str, str]:
    """Why each of the events `skipped` as older than their key's applied position is in fact
    newer: written by the source after the applied event, yet at a lower position.

    For one key, the source draws positions and timestamps in the same order (the row lock
    orders its writers), so that happens only when the positions restarted: the source
    restored from a backup, its outbox recreated. Such an event is refused, never skipped.
    """
    if not skipped:
        return {}
    stored: dict[str, tuple[int, int | None]] = {}
    keys = [e.key for e in skipped]
    with connection.cursor() as cursor:
        for condition, params in in_values(connection, keys):
            cursor.execute(
                "SELECT key, seq, ts_ms FROM strangler_cdc_position "
                f"WHERE source_table = %s AND key {condition}",
                [table, *params],
            )
            stored.update((key, (seq, ts_ms)) for key, seq, ts_ms in cursor.fetchall())
    reasons = {}
    for event in skipped:
        seq, ts_ms = stored.get(event.key, (0, None))
        if ts_ms is not None and event.seq < seq and event.ts_ms > ts_ms:
            reasons[event.key] = (
                f"position went backwards: seq {event.seq} was written {_instant(event.ts_ms)}, "
                f"after the applied seq {seq} ({_instant(ts_ms)}): the source's outbox ids "
                "restarted (restored from a backup, or the outbox recreated). Delete this "
                "table's rows of strangler_cdc_position here, discard its dead letters "
                f"(`strangler cdc dead-letters replay --table {table} --discard`), then "
                "snapshot the table in the source"
            )
    return reasons


def _instant(ts_ms: int) -> str:
    return datetime.datetime.fromtimestamp(ts_ms / 1000, datetime.UTC).isoformat()


def truncation_watermark(connection: BaseDatabaseWrapper, table: str, exclusive: bool) -> int:
    """The position of the last truncate applied to `table` (0 if none); nothing older applies.

    On PostgreSQL a transaction lock of the table is taken before any key's (one lock order
    everywhere): shared by ordinary batches, exclusive by one applying a truncate, so an older
    event applied concurrently either commits before the truncate deletes (and is deleted) or
    sees the new watermark (and is skipped).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            cursor.execute(f"SELECT {lock}(%s, hashtext(%s))", [TRUNCATE_LOCK_CLASS, table])
        cursor.execute(
            "SELECT seq FROM strangler_cdc_position WHERE source_table = %s AND key = %s",
            [table, TRUNCATE_KEY],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _truncate(connection: BaseDatabaseWrapper, mapping: TableMapping, seq: int) -> None:
    """Delete what a source TRUNCATE at `seq` emptied: every target row but those written by
    events after it (other partitions may have delivered them first)."""
    quote = connection.ops.quote_name
    column, db_table = quote(mapping.key_field.column), quote(mapping.model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key FROM strangler_cdc_position WHERE source_table = %s AND seq > %s "
            "AND op IN ('c', 'u', 'r')",
            [mapping.source_table, seq],
        )
        keep = [
            mapping.key_field.get_db_prep_value(mapping.target_key(key), connection)
            for (key,) in cursor.fetchall()
        ]
        if not keep:
            cursor.execute(f"DELETE FROM {db_table}")
        elif connection.vendor == "postgresql":
            cursor.execute(f"DELETE FROM {db_table} WHERE NOT ({column} = ANY(%s))", [keep])
        else:
            marks = ",".join("%s" for _ in keep)
            cursor.execute(f"DELETE FROM {db_table} WHERE {column} NOT IN ({marks})", keep)


def apply_table(
    connection: BaseDatabaseWrapper,
    mapping: TableMapping,
    events: Sequence[Envelope],
    using: str,
) -> tuple[int, dict[str, str]]:
    """Apply one table's events (already in the transaction): (events applied, refused keys)."""
    truncates = [e for e in events if e.op == "t"]
    watermark = truncation_watermark(connection, mapping.source_table, bool(truncates))
    rows = [e for e in events if e.op != "t" and e.seq > watermark]
    if mapping.handler is not None:
        stored = stored_positions(connection, mapping.source_table, sorted({e.key for e in rows}))
        todo = []
        for event in sorted([*truncates, *rows], key=lambda e: e.seq):
            if event.seq > watermark and is_newer(event, stored.get(event.key)):
                todo.append(event)
                stored[event.key] = event.seq
                watermark = event.seq if event.op == "t" else watermark
        for event in todo:
            mapping.handler(event, mapping, using)
        latest = list(latest_per_key(todo).values())
        claim_positions(connection, mapping.source_table, latest)
        done = {id(e) for e in todo}
        skipped = [e for e in rows if id(e) not in done]
        return len(latest), behind(connection, mapping.source_table, skipped)
    newest_truncate = max(truncates, key=lambda e: e.seq, default=None)
    emptied = []
    if newest_truncate is not None and newest_truncate.seq > watermark:
        _truncate(connection, mapping, newest_truncate.seq)
        rows = [e for e in rows if e.seq > newest_truncate.seq]
        emptied = [newest_truncate]
    newest = latest_per_key(rows)
    claimed = claim_positions(connection, mapping.source_table, [*emptied, *newest.values()])
    latest = [e for e in newest.values() if e.key in claimed]
    refused = _write_rows(connection, mapping, latest)
    applied = len(emptied) + len(latest) - len(refused)
    skipped = [e for e in newest.values() if e.key not in claimed]
    return applied, refused | behind(connection, mapping.source_table, skipped)


def forget_deleted_keys(using: str, older_than_hours: float) -> int:
    """Delete the positions of keys deleted more than `older_than_hours` ago (apply time).

    Keeps the position table from growing by one row per key ever deleted. The price: a
    duplicate or late event of such a key arriving after this is applied as new, so a
    create or update older than the delete would bring the row back. Choose a horizon well
    beyond the longest redelivery delay (relay outage plus consumer lag).
    """
    cutoff = timezone.now() - datetime.timedelta(hours=older_than_hours)
    with transaction.atomic(using=using):
        deleted, _ = (
            AppliedPosition.objects.using(using).filter(op="d", applied_at__lt=cutoff).delete()
        )
    return deleted


def apply_events(
    mappings: Mapping[str, TableMapping], events: Sequence[Envelope], using: str = "default"
) -> int:
    """Apply events of any tables in one transaction; all or nothing.

    Raises `Refused` (writing nothing) when a value cannot be held exactly by its target
    column: the caller dead-letters those keys and applies the rest again.
    """
    by_table: dict[str, list[Envelope]] = defaultdict(list)
    for event in events:
        by_table[event.table].append(event)
    connection = connections[using]
    applied = 0
    refused: dict[tuple[str, str], str] = {}
    with transaction.atomic(using=using), replica_writes(connection):
        for table, table_events in sorted(by_table.items()):  # one lock order for all appliers
            mapping = mappings.get(table)
            if mapping is None:
                raise LookupError(f"no mapping for source table {table!r}")
            count, table_refused = apply_table(connection, mapping, table_events, using)
            applied += count
            refused.update({(table, key): reason for key, reason in table_refused.items()})
        if refused:
            raise Refused(refused)
    return applied
