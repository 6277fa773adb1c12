"""The change event envelope of docs/architecture.md: encoding outbox rows, decoding messages."""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any, Literal, NamedTuple, cast, get_args

SCHEMA_VERSION = 1
# create, update, delete, read (snapshot or repair), truncate (every row of the table).
Op = Literal["c", "u", "d", "r", "t"]
OPS: frozenset[str] = frozenset(get_args(Op))
ROW_OPS = frozenset({"c", "u", "r"})  # the ops that carry the row's new image
TRUNCATE_KEY = ""  # a truncate event's key: it is about the table, not one row
# Built once: json.loads with a parse_float builds a decoder per call, 2/3 of its time here.
DECODER = json.JSONDecoder(parse_float=Decimal)
BINARY = (bytes, bytearray)  # not `bytes | bytearray`, a union built again at each call


class EnvelopeError(ValueError):
    """A message that is not a valid change event."""


class Envelope(NamedTuple):
    """One row change; `seq` is its position, growing per key in commit order (a tuple: the
    consumer builds thousands a second, in half the time a frozen dataclass takes)."""

    id: str
    app: str
    table: str
    txid: int | None
    seq: int
    op: Op
    ts_ms: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    schema_version: int
    key: str

    @property
    def row(self) -> dict[str, Any] | None:
        """The row image the target should end up with (None for a delete)."""
        return self.after if self.op in ROW_OPS else None


class OutboxRow(NamedTuple):
    """An outbox row as the relay reads it: JSON images kept as raw text (a tuple: the relay
    builds thousands a second)."""

    id: int
    app_label: str
    table_name: str
    pk: str
    op: str
    txid: int | None
    ts_ms: int
    before: str | None
    after: str | None
    schema_version: int


@functools.cache
def _source_prefix(app_label: str, table_name: str) -> str:
    """The start of an envelope's `source` object, as json.dumps writes it (once per table)."""
    return f'{{"app": {json.dumps(app_label)}, "table": {json.dumps(table_name)}, "txid": '


@functools.cache
def _id_prefix(table_name: str) -> str:
    """`"id": "TABLE:`, the table name escaped as json.dumps would (once per table)."""
    return f'"id": {json.dumps(table_name)[:-1]}:'


def encode(row: OutboxRow) -> bytes:
    """The envelope's JSON bytes, splicing the row images in without re-parsing them.

    Not parsing keeps decimals exact and costs nothing per column.
    """
    txid = "null" if row.txid is None else int(row.txid)
    source = f'{_source_prefix(row.app_label, row.table_name)}{txid}, "seq": {int(row.id)}}}'
    return (
        f'{{{_id_prefix(row.table_name)}{row.id}", "source": {source}, "op": "{row.op}", '
        f'"ts_ms": {row.ts_ms}, "before": {row.before or "null"}, '
        f'"after": {row.after or "null"}, "schema_version": {row.schema_version}}}'
    ).encode()


def decode(value: bytes | str, key: bytes | str | None) -> Envelope:
    """Parse one message; numbers with a fraction become Decimal so money stays exact."""
    try:
        if isinstance(value, BINARY):
            # As json.loads; an object whose second byte is not NUL is UTF-8, without asking.
            utf8 = value[:1] == b"{" and value[1:2] != b"\0"
            encoding = "utf-8" if utf8 else json.detect_encoding(value)
            value = value.decode(encoding, "surrogatepass")
        data = DECODER.decode(value)
        source = data["source"]
        op = data["op"]
        if op not in OPS:
            raise EnvelopeError(f"unknown op {op!r}")
        if op in ROW_OPS and not isinstance(data.get("after"), dict):
            raise EnvelopeError(f"op {op!r} without an 'after' row image")
        if isinstance(key, bytes):
            key = key.decode()
        return Envelope(
            id=str(data["id"]),
            app=str(source["app"]),
            table=str(source["table"]),
            txid=source.get("txid"),
            seq=int(source["seq"]),
            op=cast(Op, op),
            ts_ms=int(data["ts_ms"]),
            before=data.get("before"),
            after=data.get("after"),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
            key=str(key) if key is not None else "",
        )
    except EnvelopeError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise EnvelopeError(f"not a change event envelope: {error!r}") from error


def latest_per_key(events: list[Envelope]) -> dict[str, Envelope]:
    """The newest event of each key (by position): full row images make the rest redundant."""
    latest: dict[str, Envelope] = {}
    for event in events:
        current = latest.get(event.key)
        if current is None or event.seq > current.seq:
            latest[event.key] = event
    return latest


def is_newer(event: Envelope, applied_seq: int | None) -> bool:
    """Apply only what is newer than what the target row already reflects."""
    return applied_seq is None or event.seq > applied_seq
