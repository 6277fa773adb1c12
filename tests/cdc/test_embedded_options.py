"""The embedded broker's consumer options, against the real broker: quick to join, and a long
batch still commits its offsets (no redelivery)."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from strangler.cdc.embedded import CONSUMER_OPTIONS

pytestmark = pytest.mark.kafka


def test_a_batch_that_outlasts_a_few_seconds_commits_its_offsets(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("long-batch", 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(3):
        producer.send("long-batch", key=b"k", value=str(i).encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id="long-batch",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **CONSUMER_OPTIONS,
    )
    consumer.subscribe(["long-batch"])
    try:
        records: list = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
        assert len(records) == 3
        time.sleep(4.5)  # a batch applied on a loaded machine, e.g. with poison isolation
        consumer.commit()  # CommitFailedError when the group dropped us meanwhile
        assert consumer.committed(next(iter(consumer.assignment()))) == 3
    finally:
        consumer.close(autocommit=False)
