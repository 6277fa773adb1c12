"""Reconcile: compare source and target rows by key ranges with checksums; list the drift.

Runs in the receiving project, with the source database as a second alias. Source rows are
passed through the same mapping the consumer applies, so "equal" means "what the consumer
would have written". Each key range (one chunk of source keys) is compared by checksum first;
only ranges whose checksums differ are compared row by row.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connections, models
from django.db.models.functions import Cast

from strangler.cdc import generic, jsontext
from strangler.cdc.mapping import TableMapping
from strangler.cdc.snapshot import reemit
from strangler.cdc.triggers import recorded_table

Row = tuple[str, ...]


@dataclass(frozen=True)
class TableDrift:
    """The drift of one source table against its target model."""

    table: str
    model: str
    source_rows: int
    target_rows: int
    ranges: int
    ranges_differing: int
    missing: tuple[Any, ...]
    extra: tuple[Any, ...]
    different: tuple[Any, ...]
    different_columns: tuple[str, ...] = ()  # target fields that differ in `different` rows
    fields_not_carried: tuple[str, ...] = ()  # target fields no source column lands on

    @property
    def drifted(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.different)


def normalize(value: Any) -> str:
    """One text form per value, so equal values from either database hash equally."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat()
    return repr(value)


def checksum(rows: Mapping[Any, Row]) -> str:
    digest = hashlib.sha256()
    for key in sorted(rows):
        digest.update(repr((key, rows[key])).encode())
    return digest.hexdigest()


def compare(
    source: Mapping[Any, Row], target: Mapping[Any, Row]
) -> tuple[list[Any], list[Any], list[Any]]:
    """(missing in target, extra in target, different) keys of one range."""
    missing = sorted(k for k in source if k not in target)
    extra = sorted(k for k in target if k not in source)
    different = sorted(k for k in source if k in target and source[k] != target[k])
    return missing, extra, different


def differing_columns(
    names: Sequence[str], source: Mapping[Any, Row], target: Mapping[Any, Row], keys: list[Any]
) -> set[str]:
    """The names of the row positions where source and target differ, over `keys`."""
    return {
        name
        for key in keys
        for name, left, right in zip(names, source[key], target[key], strict=True)
        if left != right
    }


class TableReconciler:
    """Reads one mapped table from both databases, range by range."""

    def __init__(self, mapping: TableMapping, source: str, target: str, chunk: int) -> None:
        self.mapping = mapping
        self.source = connections[source]
        self.target = target
        self.chunk = chunk
        self._natural: dict[int, list[str]] | None = None
        info = recorded_table(self.source, mapping.source_table)
        # Only what events carry: not excluded columns, not fields only the target has.
        carried = set(info.columns) if info else set(mapping.columns)
        self.fields = [
            (column, field) for column, field in mapping.columns.items() if column in carried
        ]
        self.not_carried = tuple(mapping.not_carried(carried))

    def _source_chunks(self) -> Iterator[dict[Any, Row]]:
        quote = self.source.ops.quote_name
        key = quote(self.mapping.spec.key)
        table = quote(self.mapping.source_table)
        after = None
        while True:
            where = f"WHERE {key} > %s " if after is not None else ""
            with self.source.cursor() as cursor:
                cursor.execute(
                    f"SELECT * FROM {table} {where}ORDER BY {key} LIMIT %s",
                    [*([after] if after is not None else []), self.chunk],
                )
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            if not rows:
                return
            after = rows[-1][self.mapping.spec.key]
            yield {
                self.mapping.target_key(str(r[self.mapping.spec.key])): self._row(r) for r in rows
            }

    def _source_content_types(self) -> dict[int, list[str]]:
        """id -> [app_label, model] in the source, to compare generic relations as apply
        writes them (see `generic`)."""
        if self._natural is None:
            with self.source.cursor() as cursor:
                cursor.execute("SELECT id, app_label, model FROM django_content_type")
                self._natural = {pk: [app, model] for pk, app, model in cursor.fetchall()}
        return self._natural

    def _row(self, source_row: Mapping[str, Any]) -> Row:
        fields = self.mapping.content_type_fields
        if fields:
            natural = self._source_content_types()
            source_row = {
                **source_row,
                **{
                    c + generic.NATURAL_SUFFIX: natural.get(source_row[c])
                    for c in fields
                    if source_row.get(c) is not None
                },
            }
            source_row, _ = generic.remap(
                self.mapping.model._meta.label, fields, source_row, self.target
            )
        values = self.mapping.target_values(source_row)
        return tuple(self._normal(field, values.get(field.attname)) for _, field in self.fields)

    @staticmethod
    def _normal(field: Any, value: Any) -> str:
        """The comparable text of one value; JSON columns are read as JSON text on both sides."""
        if isinstance(field, models.JSONField):
            return "SQL NULL" if value is None else jsontext.canonical(value, parse=True)
        return normalize(value)

    def _target(self, low: Any, high: Any) -> dict[Any, Row]:
        pk = self.mapping.key_field.attname
        query = self.mapping.model._base_manager.using(self.target).order_by(pk)
        if low is not None:
            query = query.filter(**{f"{pk}__gt": low})
        if high is not None:
            query = query.filter(**{f"{pk}__lte": high})
        # JSON columns as their text, like the source's: the ORM would parse numbers as floats.
        as_text = {
            f"_cdc_text_{field.attname}": Cast(field.attname, models.TextField())
            for _, field in self.fields
            if isinstance(field, models.JSONField)
        }
        query = query.annotate(**as_text)
        selected = [
            f"_cdc_text_{field.attname}" if isinstance(field, models.JSONField) else field.attname
            for _, field in self.fields
        ]
        fields = [field for _, field in self.fields]
        return {
            values[0]: tuple(self._normal(f, v) for f, v in zip(fields, values[1:], strict=True))
            for values in query.values_list(pk, *selected).iterator(chunk_size=self.chunk)
        }

    def run(self) -> TableDrift:
        missing: list[Any] = []
        extra: list[Any] = []
        different: list[Any] = []
        columns: set[str] = set()
        names = [field.name for _, field in self.fields]
        ranges = differing = source_rows = target_rows = 0
        low = None
        for source in self._source_chunks():
            high = max(source)
            target = self._target(low, high)
            ranges += 1
            source_rows += len(source)
            target_rows += len(target)
            if checksum(source) != checksum(target):
                differing += 1
                m, e, d = compare(source, target)
                missing += m
                extra += e
                different += d
                columns |= differing_columns(names, source, target, d)
            low = high
        tail = self._target(low, None)
        if tail:
            ranges += 1
            differing += 1
            target_rows += len(tail)
            extra += sorted(tail)
        return TableDrift(
            table=self.mapping.source_table,
            model=self.mapping.model._meta.label,
            source_rows=source_rows,
            target_rows=target_rows,
            ranges=ranges,
            ranges_differing=differing,
            missing=tuple(missing),
            extra=tuple(extra),
            different=tuple(different),
            different_columns=tuple(sorted(columns)),
            fields_not_carried=self.not_carried,
        )


def reconcile(
    mappings: Sequence[TableMapping], source: str, target: str = "default", chunk: int = 1000
) -> list[TableDrift]:
    return [TableReconciler(m, source, target, chunk).run() for m in mappings]


def repair(drifts: Sequence[TableDrift], source: str) -> dict[str, tuple[int, int]]:
    """Re-emit events for exactly the drifted keys; returns {table: (reads, deletes)}."""
    done = {}
    for drift in drifts:
        keys = [*drift.missing, *drift.different, *drift.extra]
        if keys:
            done[drift.table] = reemit(source, drift.table, keys)
    return done
