"""Kafka clients built from the setting; the only module that constructs them.

`options` are the setting's `kafka` entries other than bootstrap_servers (security, client id,
timeouts...): each client takes the ones it knows, so one dict serves producer, consumer and
admin client alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.partitioner.default import DefaultPartitioner, murmur2

KafkaClient = type[KafkaProducer] | type[KafkaConsumer] | type[KafkaAdminClient]


def options_for(client: KafkaClient, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entries of `options` that this kafka-python client class accepts."""
    return {k: v for k, v in (options or {}).items() if k in client.DEFAULT_CONFIG}


def producer(bootstrap_servers: str, options: Mapping[str, Any] | None = None) -> KafkaProducer:
    """An acks=all, idempotent producer: broker retries never reorder or duplicate a key."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_block_ms": 5000,
        # A topic the broker would create on first use gets the broker's partition count,
        # not the plan's: topics are created by ensure_topics only.
        "allow_auto_create_topics": False,
        "request_timeout_ms": 10000,
        "retries": 3,
    }
    config.update(options_for(KafkaProducer, options))
    return KafkaProducer(**config)


def keyed_partitions(producer: KafkaProducer) -> bool:
    """Whether the caller may pick partitions by `partition_of`: the producer would pick the
    same ones (its partitioner is the default, not one the client options chose)."""
    return type(producer.config["partitioner"]) is DefaultPartitioner


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition kafka-python's (and Java's) default partitioner gives `key` among a
    topic's `partitions` (sorted): found once per topic and batch, not sorted per message."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def discard(client: KafkaProducer | None) -> None:
    """Close a producer that failed without waiting for what it still holds.

    Its unacknowledged records are the caller's to send again (a fresh producer gets a fresh
    producer id: after a broker restart the old one is unknown and would be retried forever).
    """
    if client is not None:
        with contextlib.suppress(KafkaError):
            client.close(timeout=0)


def await_delivery(producer: KafkaProducer, futures: Sequence[Any], stall_s: float = 3.0) -> list:
    """Wait for every future's acknowledgement while the producer makes progress.

    A producer that acknowledges nothing for `stall_s` is stuck (after a broker restart it
    retries an unknown producer id forever): KafkaTimeoutError, so the caller replaces it
    within seconds instead of waiting out a long flush; a long batch that keeps being
    acknowledged is given the time it needs.
    """
    done = sum(1 for future in futures if future.is_done)
    while True:
        try:
            producer.flush(timeout=stall_s)
            return [future.get(timeout=0) for future in futures]
        except KafkaTimeoutError:
            now = sum(1 for future in futures if future.is_done)
            if now == done:
                raise
            done = now


def consumer_config(
    bootstrap_servers: str,
    group_id: str,
    batch_size: int,
    options: Mapping[str, Any] | None = None,
    consumer_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """KafkaConsumer keyword arguments: ours, then the client options, then the consumer's."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": batch_size,
        "fetch_max_wait_ms": 100,  # an idle topic answers within 100 ms: bounds the lag added
        "allow_auto_create_topics": False,
        # kafka-python 3 defaults to 45 s: a consumer restarted after a crash (no LeaveGroup)
        # waits that long for the group to drop its old member before anything is applied.
        # Heartbeats come from a background thread, so a long batch does not expire it.
        "session_timeout_ms": 10_000,
    }
    config.update(options_for(KafkaConsumer, options))
    config.update(consumer_options or {})
    return config


def consumer(
    bootstrap_servers: str,
    group_id: str,
    topics: Iterable[str],
    batch_size: int,
    options: Mapping[str, Any] | None = None,
    consumer_options: Mapping[str, Any] | None = None,
) -> KafkaConsumer:
    """A group consumer that commits only when told (after the database transaction)."""
    client = KafkaConsumer(
        **consumer_config(bootstrap_servers, group_id, batch_size, options, consumer_options)
    )
    client.subscribe(sorted(set(topics)))
    return client


def topic_id(client: KafkaConsumer, topic: str) -> str:
    """The broker's id of `topic` as last seen in metadata ('' when the broker has none).

    kafka-python keeps it in the client's cluster metadata, which the consumer does not
    expose publicly.
    """
    found = client._client.cluster.topic_id(topic)
    return str(found) if found else ""


def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    replication_factor: int,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Create missing topics (production brokers usually disable auto-creation)."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), **options_for(KafkaAdminClient, options)
    )
    try:
        missing = sorted(set(names) - set(admin.list_topics()))
        for name in missing:
            # Another relay or consumer may create it meanwhile.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, partitions, replication_factor)])
    finally:
        admin.close()
