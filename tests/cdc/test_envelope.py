"""The envelope contract and the pure decisions of idempotent apply."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from strangler.cdc.envelope import (
    EnvelopeError,
    OutboxRow,
    decode,
    encode,
    is_newer,
    latest_per_key,
)
from strangler.cdc.reconcile import checksum, compare, normalize


def row(seq: int, op: str = "u", after: str | None = '{"id": 7, "price": 19.990}') -> OutboxRow:
    return OutboxRow(seq, "catalog", "catalog_product", "7", op, 42, 1000 + seq, None, after, 1)


def test_envelope_carries_the_contract_fields_and_exact_decimals():
    event = decode(encode(row(5)), b"7")
    assert json.loads(encode(row(5)))["source"] == {
        "app": "catalog",
        "table": "catalog_product",
        "txid": 42,
        "seq": 5,
    }
    assert (event.op, event.seq, event.key, event.id) == ("u", 5, "7", "catalog_product:5")
    assert event.after == {"id": 7, "price": Decimal("19.990")}
    assert event.schema_version == 1


def test_a_table_name_json_must_escape_is_still_a_valid_envelope():
    odd = OutboxRow(5, "app", 'legacy"orders\\2', "7", "u", 42, 1005, None, '{"id": 7}', 1)
    event = decode(encode(odd), b"7")
    assert (event.id, event.table) == ('legacy"orders\\2:5', 'legacy"orders\\2')


@pytest.mark.parametrize(
    "value",
    [b"not json", b'{"id": 1}', json.dumps({"id": "x", "source": {}, "op": "z"}).encode()],
)
def test_anything_else_is_rejected_as_not_an_envelope(value):
    with pytest.raises(EnvelopeError):
        decode(value, b"1")


def test_update_without_row_image_is_rejected():
    with pytest.raises(EnvelopeError, match="without an 'after'"):
        decode(encode(row(3, after=None)), b"7")


def test_only_the_newest_event_per_key_matters_and_older_ones_are_no_ops():
    events = [decode(encode(row(seq)), b"7") for seq in (3, 9, 5)]
    assert latest_per_key(events)["7"].seq == 9
    assert is_newer(events[1], None) and is_newer(events[1], 5)
    assert not is_newer(events[0], 9) and not is_newer(events[1], 9)


def test_reconcile_compares_normalized_values_by_key():
    source = {1: (normalize(Decimal("12.50")),), 2: ("'a'",), 3: ("'b'",)}
    target = {1: (normalize(Decimal("12.5")),), 2: ("'changed'",), 4: ("'x'",)}
    assert compare(source, target) == ([3], [4], [2])
    assert checksum({1: source[1]}) == checksum({1: target[1]})


def test_each_kafka_client_takes_only_the_options_it_knows():
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    from strangler.cdc.kafka import options_for

    options = {"security_protocol": "SSL", "acks": "all", "group_id": "x"}
    assert options_for(KafkaProducer, options) == {"security_protocol": "SSL", "acks": "all"}
    assert options_for(KafkaConsumer, options) == {"security_protocol": "SSL", "group_id": "x"}
    assert options_for(KafkaAdminClient, options) == {"security_protocol": "SSL"}


def test_a_consumer_restarted_after_a_crash_waits_seconds_not_a_minute_for_its_group():
    from strangler.cdc.kafka import consumer_config

    config = consumer_config("a:9092,b:9092", "svc", 500, {"security_protocol": "SSL"})
    assert config["session_timeout_ms"] == 10_000  # kafka-python 3's own default is 45 s
    assert config["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert config["max_poll_records"] == 500 and config["security_protocol"] == "SSL"
    overridden = consumer_config("a:9092", "svc", 500, None, {"session_timeout_ms": 3000})
    assert overridden["session_timeout_ms"] == 3000
