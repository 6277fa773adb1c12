"""Declarative mapping of a source table onto a model of the receiving project.

Source row images carry column names, so a foreign key arrives as its plain id
(`category_id`); it lands on a field with that attname (a ForeignKey without a database
constraint, or a plain integer field). `rename` maps a source column to a target field,
`drop` leaves columns out, `transform` runs a function on one value, `handler` replaces the
whole apply step for the table.
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, partial
from typing import Any

from django.apps import apps
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.module_loading import import_string

from strangler.cdc.conf import MappingSpec
from strangler.cdc.exact import Check, checker
from strangler.cdc.generic import content_type_fields

Transform = Callable[[Any], Any]
Convert = Callable[[Any], Any]  # a row image's value -> the field's Python value
Conversion = tuple[str, models.Field, Transform | None, type | None, Convert, Check | None]


@dataclass(frozen=True)
class TableMapping:
    """A resolved mapping: target model, and source column -> target field in order."""

    spec: MappingSpec
    model: type[models.Model]
    columns: Mapping[str, models.Field]
    key_field: models.Field
    transforms: Mapping[str, Transform]
    handler: Callable[..., None] | None
    naive_zone: datetime.tzinfo = datetime.UTC  # see MappingSpec.naive_time_zone
    # Per database vendor ('' without checks), built on first use: see `_plan`.
    _plans: dict[str, list[Conversion]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def source_table(self) -> str:
        return self.spec.source_table

    @cached_property
    def content_type_fields(self) -> dict[str, models.Field]:
        """Columns landing on a foreign key to ContentType (remapped, see `generic`)."""
        return content_type_fields(self.columns)

    def target_values(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The target field attnames and Python values for a source row image."""
        return self._values(row, self._plan(None))[0]

    def exact_values(
        self, row: Mapping[str, Any], connection: BaseDatabaseWrapper
    ) -> tuple[dict[str, Any], list[str]]:
        """`target_values`, and why each value the target columns cannot hold exactly fails."""
        return self._values(row, self._plan(connection))

    def _plan(self, connection: BaseDatabaseWrapper | None) -> list[Conversion]:
        """(column, target field, transform, plain type, converter, exactness check) per mapped
        column, found once per vendor; no checks without a connection."""
        vendor = connection.vendor if connection is not None else ""
        plan = self._plans.get(vendor)
        if plan is None:
            plan = [
                (
                    column,
                    target,
                    self.transforms.get(column),
                    plain_type(target),
                    converter(target, self.naive_zone),
                    checker(target, connection) if connection is not None else None,
                )
                for column, target in self.columns.items()
            ]
            self._plans[vendor] = plan
        return plan

    def _values(
        self, row: Mapping[str, Any], plan: list[Conversion]
    ) -> tuple[dict[str, Any], list[str]]:
        """{attname: Python value} of the row's mapped columns, and the checks' reasons.

        One loop over the columns, no generator: it runs for every value the consumer applies.
        """
        values: dict[str, Any] = {}
        refused: list[str] = []
        for column, target, transform, plain, convert, check in plan:
            if column not in row:
                continue
            source = row[column] if transform is None else transform(row[column])
            value = source if type(source) is plain else convert(source)
            values[target.attname] = value
            if check is not None and value is not None:
                reason = check(source, value)
                if reason is not None:
                    refused.append(f"{self.model._meta.label}.{target.name}: {reason}")
        return values, refused

    def not_carried(self, carried: Collection[str]) -> list[str]:
        """The target fields that none of the source columns `carried` lands on: no event
        writes them. Right for a field the service owns (say so with `drop`); stale data when
        the source renamed or dropped the column (map the new name with `rename`)."""
        return [field.name for column, field in self.columns.items() if column not in carried]

    def target_key(self, key: str) -> Any:
        return to_python(self.key_field, key, self.naive_zone)


# Fields whose Python value a row image already holds as this type: converting it (and
# preparing it for the database, on PostgreSQL and SQLite) returns it unchanged.
PLAIN_TYPES: dict[str, type] = {
    **dict.fromkeys(["CharField", "TextField", "SlugField", "EmailField", "URLField"], str),
    "BooleanField": bool,
    **dict.fromkeys(
        ["IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
         "PositiveBigIntegerField", "PositiveSmallIntegerField", "AutoField", "BigAutoField",
         "SmallAutoField"],
        int,
    ),
}  # fmt: skip


def plain_type(field: models.Field) -> type | None:
    """The type a value of `field` already has when no conversion is needed (None: always
    convert)."""
    target = field.target_field if field.is_relation else field
    return PLAIN_TYPES.get(target.get_internal_type())


def to_python(field: models.Field, value: Any, naive_zone: datetime.tzinfo = datetime.UTC) -> Any:
    """Convert a JSON value to the field's Python type (aware datetimes when USE_TZ: one
    without an offset is in `naive_zone`)."""
    if value is None:
        return None
    if field.is_relation:
        field = field.target_field
    if isinstance(field, models.JSONField):
        return value
    if isinstance(field, models.DurationField) and type(value) is int:
        return datetime.timedelta(microseconds=value)  # SQLite stores durations as microseconds
    result = field.to_python(value)
    if isinstance(result, datetime.datetime) and timezone.is_naive(result):
        from django.conf import settings

        if settings.USE_TZ:
            result = timezone.make_aware(result, naive_zone)
    return result


def converter(field: models.Field, naive_zone: datetime.tzinfo = datetime.UTC) -> Convert:
    """`to_python` for `field`; for a DateTimeField or DecimalField (exactly those classes: a
    subclass may convert otherwise) a shortcut returning the same for the usual input."""
    target = field.target_field if field.is_relation else field
    if type(target) is models.DateTimeField:
        return partial(_datetime, target, naive_zone)
    if type(target) is models.DecimalField:
        return partial(_decimal, target)
    return partial(to_python, target, naive_zone=naive_zone)


def _datetime(field: models.Field, naive_zone: datetime.tzinfo, value: Any) -> Any:
    """ISO text with an offset, parsed as DateTimeField.to_python does (parse_datetime tries
    fromisoformat first); anything else, or no offset (made aware in `naive_zone`), by
    `to_python`."""
    if type(value) is str:
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            return to_python(field, value, naive_zone)
        if parsed.tzinfo is not None:  # a fixed offset: fromisoformat makes no other tzinfo
            return parsed
    return to_python(field, value, naive_zone)


def _decimal(field: models.Field, value: Any) -> Any:
    """A finite Decimal is its own value (DecimalField.to_python copies it exactly); anything
    else, NaN and infinities included (refused there), by `to_python`."""
    if type(value) is Decimal and value.is_finite():
        return value
    return to_python(field, value)


def _field(model: type[models.Model], name: str) -> models.Field | None:
    for field in model._meta.concrete_fields:
        if name in (field.name, field.attname, field.column):
            return field
    return None


def problems(spec: MappingSpec) -> list[tuple[str, str, str]]:
    """Everything wrong with one mapping, as (id, message, hint) triples."""
    where = f"STRANGLER_CDC['consume']['mappings'][{spec.source_table!r}]"
    try:
        model = apps.get_model(spec.model)
    except (LookupError, ValueError):
        return [
            (
                "cdc.E004",
                f"{where} maps to model {spec.model!r}, which is not an installed model.",
                "Use 'app_label.ModelName' of a model in INSTALLED_APPS.",
            )
        ]
    found: list[tuple[str, str, str]] = []
    for column, target in spec.rename.items():
        if _field(model, target) is None:
            found.append(
                (
                    "cdc.E005",
                    f"{where} renames {column!r} to {target!r}, but {spec.model} has no "
                    f"field {target!r}.",
                    "Rename to an existing field, or add the field to the model.",
                )
            )
    targets = {spec.rename.get(column, column) for column in spec.transform}
    for target in targets - set(spec.rename.values()):
        if _field(model, target) is None:
            found.append(
                (
                    "cdc.E005",
                    f"{where} transforms {target!r}, but {spec.model} has no field {target!r}.",
                    "Transform a column that lands on an existing field.",
                )
            )
    mapped = mapped_columns(model, spec.rename)
    for column in spec.drop:
        if column not in mapped:
            found.append(
                (
                    "cdc.E005",
                    f"{where} drops {column!r}, which lands on no field of {spec.model}.",
                    f"Source columns that land on a field: {', '.join(sorted(mapped))}.",
                )
            )
    key_target = spec.rename.get(spec.key, spec.key)
    key_field = _field(model, key_target)
    if key_field is None or not key_field.primary_key:
        found.append(
            (
                "cdc.E006",
                f"{where}: source key {spec.key!r} must land on {spec.model}'s primary key, "
                f"but it lands on {key_target!r}.",
                "Rename the source key column to the target model's primary key field.",
            )
        )
    try:
        zoneinfo.ZoneInfo(spec.naive_time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        found.append(
            (
                "cdc.E010",
                f"{where}['naive_time_zone'] is {spec.naive_time_zone!r}, which is no time zone.",
                "Give an IANA zone name such as 'Europe/Berlin' (the source's TIME_ZONE), or "
                "leave it out for UTC.",
            )
        )
    for path in [*spec.transform.values(), *([spec.handler] if spec.handler else [])]:
        try:
            import_string(path)
        except ImportError as error:
            found.append(
                (
                    "cdc.E007",
                    f"{where} names {path!r}, which cannot be imported: {error}.",
                    "Give the dotted path of a function importable by the project.",
                )
            )
    return found


def mapped_columns(model: type[models.Model], rename: Mapping[str, str]) -> dict[str, models.Field]:
    """Source column -> the target field it lands on, for every concrete field of `model`."""
    by_target = {target: column for column, target in rename.items()}
    return {
        by_target.get(field.name) or by_target.get(field.attname) or field.attname: field
        for field in model._meta.concrete_fields
    }


def resolve(spec: MappingSpec) -> TableMapping:
    """Build the mapping; call only when `problems(spec)` is empty."""
    model = apps.get_model(spec.model)
    columns = {
        column: field
        for column, field in mapped_columns(model, spec.rename).items()
        if column not in spec.drop
    }
    key_field = _field(model, spec.rename.get(spec.key, spec.key))
    assert key_field is not None
    return TableMapping(
        spec=spec,
        model=model,
        columns=columns,
        key_field=key_field,
        transforms={column: import_string(path) for column, path in spec.transform.items()},
        handler=import_string(spec.handler) if spec.handler else None,
        naive_zone=zoneinfo.ZoneInfo(spec.naive_time_zone),
    )
