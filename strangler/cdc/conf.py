"""The `STRANGLER_CDC` setting, read into frozen dataclasses.

Reading is pure (a dict in, facts out); resolving model labels against the app registry and
validating them is in `checks`, so a bad setting is reported as Django system check errors.

    STRANGLER_CDC = {
        "kafka": {"bootstrap_servers": "kafka:9092"},  # + client options (security...)
        "topic_prefix": "monolith.",                 # topic = prefix + table name
        "topics": {"partitions": 3, "replication_factor": 1},   # for topics the relay creates
        "capture": {"catalog.Product": {"exclude": ["secret"]}, "catalog.Category": {}},
        "relay": {"batch_size": 2000, "retention_hours": 24},
        "consume": {
            "group_id": "catalog-service",
            "topic_prefix": "monolith.",
            "mappings": {"catalog_product": {"model": "catalog.Product",
                                              "rename": {}, "drop": [], "transform": {}}},
            "max_attempts": 5,
            "dead_letter_topic": "catalog-service.dead-letters",
            "source_database": "source",              # for reconcile; optional
            "kafka_options": {},                      # extra KafkaConsumer keyword arguments
        },
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SETTING = "STRANGLER_CDC"


@dataclass(frozen=True)
class CaptureSpec:
    """One captured model: its label ("app_label.ModelName") and the columns left out."""

    model: str
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelaySpec:
    batch_size: int = 2000
    poll_interval_s: float = 0.1
    retention_hours: float = 24.0
    max_backoff_s: float = 5.0


@dataclass(frozen=True)
class MappingSpec:
    """How one source table lands in one model of the receiving project."""

    source_table: str
    model: str
    key: str = "id"
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    transform: Mapping[str, str] = field(default_factory=dict)
    handler: str | None = None
    # The zone of the source's datetimes that carry no offset (the source's TIME_ZONE when
    # it runs with USE_TZ = False; Django's reading, UTC, otherwise).
    naive_time_zone: str = "UTC"


@dataclass(frozen=True)
class ConsumeSpec:
    group_id: str
    topic_prefix: str
    mappings: tuple[MappingSpec, ...]
    dead_letter_topic: str
    batch_size: int = 2000
    max_attempts: int = 5
    backoff_ms: int = 50
    source_database: str | None = None
    kafka_options: Mapping[str, Any] = field(default_factory=dict)
    position_retention_hours: float | None = None

    def topic(self, table: str) -> str:
        return f"{self.topic_prefix}{table}"


@dataclass(frozen=True)
class CdcSettings:
    bootstrap_servers: str
    topic_prefix: str
    capture: tuple[CaptureSpec, ...]
    relay: RelaySpec
    consume: ConsumeSpec | None
    client_options: Mapping[str, Any] = field(default_factory=dict)
    partitions: int = 3
    replication_factor: int = 1

    def topic(self, table: str) -> str:
        return f"{self.topic_prefix}{table}"


def _mapping(table: str, raw: Mapping[str, Any]) -> MappingSpec:
    return MappingSpec(
        source_table=table,
        model=str(raw.get("model", "")),
        key=str(raw.get("key", "id")),
        rename=dict(raw.get("rename", {})),
        drop=tuple(raw.get("drop", ())),
        transform=dict(raw.get("transform", {})),
        handler=raw.get("handler"),
        naive_time_zone=str(raw.get("naive_time_zone", MappingSpec.naive_time_zone)),
    )


def _consume(raw: Mapping[str, Any] | None, default_prefix: str) -> ConsumeSpec | None:
    if not raw:
        return None
    group_id = str(raw.get("group_id", "strangler-cdc"))
    return ConsumeSpec(
        group_id=group_id,
        topic_prefix=str(raw.get("topic_prefix", default_prefix)),
        mappings=tuple(_mapping(t, m) for t, m in dict(raw.get("mappings", {})).items()),
        dead_letter_topic=str(raw.get("dead_letter_topic", f"{group_id}.dead-letters")),
        batch_size=int(raw.get("batch_size", ConsumeSpec.batch_size)),
        max_attempts=int(raw.get("max_attempts", 5)),
        backoff_ms=int(raw.get("backoff_ms", 50)),
        source_database=raw.get("source_database"),
        kafka_options=dict(raw.get("kafka_options", {})),
        position_retention_hours=(
            float(raw["position_retention_hours"])
            if raw.get("position_retention_hours") is not None
            else None
        ),
    )


def parse(raw: Mapping[str, Any] | None) -> CdcSettings:
    """Read the setting's dict (None means "nothing configured")."""
    raw = raw or {}
    kafka = dict(raw.get("kafka", {}))
    prefix = str(raw.get("topic_prefix", "cdc."))
    relay = dict(raw.get("relay", {}))
    return CdcSettings(
        bootstrap_servers=str(kafka.pop("bootstrap_servers", "localhost:9092")),
        topic_prefix=prefix,
        capture=tuple(
            CaptureSpec(model=label, exclude=tuple((spec or {}).get("exclude", ())))
            for label, spec in dict(raw.get("capture", {})).items()
        ),
        relay=RelaySpec(
            batch_size=int(relay.get("batch_size", RelaySpec.batch_size)),
            poll_interval_s=float(relay.get("poll_interval_s", RelaySpec.poll_interval_s)),
            retention_hours=float(relay.get("retention_hours", 24.0)),
            max_backoff_s=float(relay.get("max_backoff_s", 5.0)),
        ),
        consume=_consume(raw.get("consume"), prefix),
        client_options=kafka,
        partitions=int(dict(raw.get("topics", {})).get("partitions", 3)),
        replication_factor=int(dict(raw.get("topics", {})).get("replication_factor", 1)),
    )


@dataclass(frozen=True)
class Number:
    """A numeric option: an int or a number (`kind` float takes ints too), at least `least`."""

    kind: type
    least: int
    optional: bool = False  # None means "not set"

    def problem(self, where: str, value: Any) -> tuple[str, str] | None:
        if value is None and self.optional:
            return None
        kinds = (int,) if self.kind is int else (int, float)
        if isinstance(value, kinds) and not isinstance(value, bool) and value >= self.least:
            return None
        what = "an integer" if self.kind is int else "a number"
        return (
            f"{where} must be {what} of at least {self.least}, not {value!r}.",
            "See docs/cdc.md.",
        )


@dataclass(frozen=True)
class Each:
    """A dict of names (models, tables) to sections of the same shape."""

    section: Mapping[str, Any]


# The shape of the setting: a dict is a section whose keys are all its known keys (None: any
# value, checked by `parse`), so a typo is an error rather than a default silently used.
# ("exlude" would publish the column it meant to leave out.)
POSITIVE = Number(int, 1)
MAPPING_KEYS = ("model", "key", "rename", "drop", "transform", "handler", "naive_time_zone")
SCHEMA: Mapping[str, Any] = {
    "kafka": None,  # client options, passed through
    "topic_prefix": None,
    "topics": {"partitions": POSITIVE, "replication_factor": POSITIVE},
    "capture": Each({"exclude": None}),
    "relay": {
        "batch_size": POSITIVE,
        "poll_interval_s": Number(float, 0),
        "retention_hours": Number(float, 0),
        "max_backoff_s": Number(float, 0),
    },
    "consume": {
        "group_id": None,
        "topic_prefix": None,
        "mappings": Each(dict.fromkeys(MAPPING_KEYS)),
        "dead_letter_topic": None,
        "batch_size": POSITIVE,
        "max_attempts": POSITIVE,
        "backoff_ms": Number(int, 0),
        "source_database": None,
        "kafka_options": None,  # KafkaConsumer options, passed through
        "position_retention_hours": Number(float, 0, optional=True),
    },
}


def problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(message, hint) for every unknown key, at any level, and every number out of range.

    Sections that are not dicts are left to `parse`, which reports them as malformed."""
    return _problems(SETTING, raw, SCHEMA)


def _problems(where: str, value: Any, shape: Any) -> list[tuple[str, str]]:
    if isinstance(shape, Number):
        problem = shape.problem(where, value)
        return [problem] if problem else []
    if shape is None or not isinstance(value, Mapping):
        return []
    if isinstance(shape, Each):
        return [
            problem
            for name, item in value.items()
            for problem in _problems(f"{where}[{name!r}]", item or {}, shape.section)
        ]
    known = f"Known keys: {', '.join(sorted(shape))}."
    found = [
        (f"{where} has unknown key {key!r}.", known)
        for key in sorted(set(value) - set(shape), key=str)
    ]
    for key in shape:
        if key in value:
            found += _problems(f"{where}[{key!r}]", value[key], shape[key])
    return found


def current() -> CdcSettings:
    """The running project's setting."""
    from django.conf import settings

    return parse(getattr(settings, SETTING, None))
