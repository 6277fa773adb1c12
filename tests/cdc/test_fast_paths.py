"""The shortcuts of consumer and relay give exactly what the general paths give.

`mapping.converter` parses ISO datetimes and passes finite Decimals without Django's
`to_python`; on PostgreSQL the upsert sends datetimes and Decimals without `get_db_prep_save`,
and a timestamptz column gets the source's ISO text instead of the parsed datetime. Each is
compared with the general path on values picked to tell them apart (offsets with seconds,
fractions, naive and date-only text, NaN, exponents, what PostgreSQL and Python read
differently), under USE_TZ on and off. And the relay picks a message's partition as the
producer's default partitioner would.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.test import override_settings
from django.test.utils import isolate_apps
from kafka.partitioner.default import DefaultPartitioner
from kafka.partitioner.sticky import StickyPartitioner

from strangler.cdc.apply import ISO, POSTGRES_AS_IS, apply_events, as_is, iso_source
from strangler.cdc.conf import MappingSpec
from strangler.cdc.envelope import OutboxRow, decode, encode
from strangler.cdc.kafka import keyed_partitions, partition_of
from strangler.cdc.mapping import TableMapping, converter, to_python

pytestmark = pytest.mark.django_db
ON_POSTGRES = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL path")

DATETIMES: list[Any] = [
    "2026-12-02T00:30:01.123456+00:00",
    "2026-12-02T00:30:01.12345+00:00",
    "2026-12-02T00:30:01.1-03:30",
    "1883-11-18T12:00:00+05:53:28",  # local mean time: an offset with seconds
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59.999999+00:00",
    "2026-03-29T02:30:00+01:00",
    "2026-12-02T00:30:01+05:75",  # Python carries the minutes over, PostgreSQL refuses them
    "2026-12-02T00:30:01.1234567+00:00",  # beyond microseconds: Python truncates, PG rounds
    "2026-12-02T00:30:01Z",
    "2026-12-02 00:30:01+01:00",
    "2026-12-02T00:30:01",  # naive: made aware under USE_TZ
    "2026-12-02",
    "2026-02-30T00:00:00+00:00",
    "2026-12-02T24:00:00+00:00",
    "2026-12-02T00:30:60+00:00",
    "not a date",
    1_764_635_401,
    None,
    datetime.datetime(2026, 12, 2, 0, 30, 1),
    datetime.datetime(2026, 12, 2, 0, 30, 1, tzinfo=datetime.UTC),
]
DECIMALS: list[Any] = [
    Decimal("10.99"),
    Decimal("10.990"),
    Decimal("-0"),
    Decimal("-0.00"),
    Decimal("1E+3"),
    Decimal("0E-30"),
    Decimal("123456789012345678901234567890.123456789012345"),
    Decimal("NaN"),
    Decimal("-sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    10,
    2**70,
    1.5,
    float("nan"),
    "1.50",
    "NaN",
    True,
    None,
]
FIELDS = [
    models.DateTimeField(null=True),
    models.DecimalField(max_digits=12, decimal_places=2, null=True),
    models.DecimalField(max_digits=40, decimal_places=20, null=True),
]


def outcome(convert: Any, value: Any) -> tuple[str, str]:
    """The type and repr of what `convert` returns (repr tells 10.99 from 10.990, and shows
    the tzinfo), or the exception it raises."""
    try:
        result = convert(value)
    except (ValidationError, ValueError, TypeError) as error:
        return "raises", type(error).__name__
    return type(result).__name__, repr(result)


@pytest.mark.parametrize("use_tz", [True, False])
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: type(f).__name__)
def test_the_converters_give_what_to_python_gives(field: models.Field, use_tz: bool):
    values = DATETIMES if isinstance(field, models.DateTimeField) else DECIMALS
    with override_settings(USE_TZ=use_tz):
        for value in values:
            general = outcome(lambda v: to_python(field, v), value)
            assert outcome(converter(field), value) == general, value


@ON_POSTGRES
@pytest.mark.parametrize("use_tz", [True, False])
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: type(f).__name__)
def test_values_sent_unprepared_are_what_get_db_prep_save_returns(
    field: models.Field, use_tz: bool
):
    values = DATETIMES if isinstance(field, models.DateTimeField) else DECIMALS
    with override_settings(USE_TZ=use_tz):
        unprepared = as_is(field, connection)
        assert POSTGRES_AS_IS[type(field)] in unprepared
        sent = 0
        for value in values:
            try:
                converted = converter(field)(value)
            except (ValidationError, ValueError, TypeError):
                continue
            if type(converted) in unprepared:
                prepared = field.get_db_prep_save(converted, connection)
                assert (type(prepared), repr(prepared)) == (type(converted), repr(converted))
                sent += 1
        assert sent >= 5


def make_model() -> type[models.Model]:
    with isolate_apps("monolith.catalog"):
        meta = type("Meta", (), {"app_label": "catalog", "db_table": "cdc_test_stamp"})
        model = type(
            "Stamp",
            (models.Model,),
            {
                "__module__": __name__,
                "Meta": meta,
                "k": models.TextField(primary_key=True),
                "at": models.DateTimeField(null=True),
                "later": models.DateTimeField(null=True),
            },
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE cdc_test_stamp (k text PRIMARY KEY, at timestamptz, later timestamptz)"
        )
    return model


def stamps(model: type[models.Model], transforms: dict) -> dict[str, TableMapping]:
    fields = {f.attname: f for f in model._meta.concrete_fields}
    spec = MappingSpec("cdc_test_stamp", "catalog.Stamp")
    mapping = TableMapping(spec, model, fields, model._meta.pk, transforms, None)
    return {"cdc_test_stamp": mapping}


def stored(key: str) -> tuple[Any, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT at, later FROM cdc_test_stamp WHERE k = %s", [key])
        return cursor.fetchone()


@ON_POSTGRES
@pytest.mark.parametrize("use_tz", [True, False])
def test_timestamptz_from_the_source_text_is_the_instant_python_parses(use_tz: bool):
    """`at` gets the source's text where ISO matches; `later` (a transform returning its
    input) always gets the parsed datetime, the general path."""
    model = make_model()
    mappings = stamps(model, {"later": lambda value: value})
    mapping, field = mappings["cdc_test_stamp"], model._meta.get_field("at")
    assert iso_source(mapping, field, connection) == "at"
    assert iso_source(mapping, model._meta.get_field("later"), connection) is None
    written = 0
    with override_settings(USE_TZ=use_tz):
        for seq, text in enumerate(DATETIMES, start=1):
            if not isinstance(text, str):
                continue
            try:
                expected = to_python(field, text)
            except ValidationError:
                continue
            key = f"k{seq}"
            image = json.dumps({"k": key, "at": text, "later": text})
            row = OutboxRow(seq, "catalog", "cdc_test_stamp", key, "c", None, 1, None, image, 1)
            apply_events(mappings, [decode(encode(row), key)])
            at, later = stored(key)
            assert at == later, text
            if use_tz:
                assert at == expected, text
            written += bool(ISO.fullmatch(text))
    assert written >= 6
    assert not ISO.fullmatch("2026-12-02T00:30:01+05:75")
    assert not ISO.fullmatch("2026-12-02T00:30:01.1234567+00:00")


class Cluster:
    """The metadata DefaultPartitioner reads: one topic with `count` partitions."""

    def __init__(self, count: int) -> None:
        self.partitions = set(range(count))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@pytest.mark.parametrize("count", [1, 3, 4, 7])
def test_the_relay_picks_the_partition_the_producer_would(count: int):
    keys = [str(i).encode() for i in range(2000)]
    keys += [b"", b"\xff" * 5, "é€😀".encode(), b"-1", b"x" * 101, b"catalog_product:42"]
    cluster, default = Cluster(count), DefaultPartitioner()
    partitions = sorted(cluster.partitions)
    for key in keys:
        assert partition_of(key, partitions) == default.partition("t", key, key, b"", b"", cluster)
    assert keyed_partitions(SimpleNamespace(config={"partitioner": default}))
    assert not keyed_partitions(SimpleNamespace(config={"partitioner": StickyPartitioner()}))
