"""`strangler cdc broker` gives a user's own project the embedded broker, as docs/cdc.md says."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.cdc.harness import REPO, free_port

pytestmark = pytest.mark.kafka


def test_the_broker_command_serves_kafka_clients_until_stopped():
    port = free_port()
    broker = subprocess.Popen(
        [sys.executable, "-m", "strangler", "cdc", "broker", "--port", str(port), "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        announced = json.loads(broker.stdout.readline())
        assert announced["bootstrap_servers"] == f"127.0.0.1:{port}"
        assert announced["consume_kafka_options"]["max_poll_interval_ms"] > 0
        producer = KafkaProducer(bootstrap_servers=announced["bootstrap_servers"])
        producer.send("walkthrough", key=b"1", value=b"hello").get(timeout=10)
        producer.close()
        reader = KafkaConsumer(bootstrap_servers=announced["bootstrap_servers"],
                               consumer_timeout_ms=3000)  # fmt: skip
        reader.assign(
            [TopicPartition("walkthrough", p) for p in reader.partitions_for_topic("walkthrough")]
        )
        reader.seek_to_beginning()
        assert [m.value for m in reader] == [b"hello"]
        reader.close()
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(10) == 0
