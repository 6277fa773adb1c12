"""Kafka clients built from the setting; the only module that constructs them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer


def producer(bootstrap_servers: str, options: Mapping[str, Any] | None = None) -> KafkaProducer:
    """An acks=all, idempotent producer: broker retries never reorder or duplicate a key."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_block_ms": 5000,
        "request_timeout_ms": 10000,
        "retries": 3,
    }
    config.update(options or {})
    return KafkaProducer(**config)


def consumer(
    bootstrap_servers: str,
    group_id: str,
    topics: Iterable[str],
    batch_size: int,
    options: Mapping[str, Any] | None = None,
) -> KafkaConsumer:
    """A group consumer that commits only when told (after the database transaction)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": batch_size,
    }
    config.update(options or {})
    client = KafkaConsumer(**config)
    client.subscribe(sorted(set(topics)))
    return client
