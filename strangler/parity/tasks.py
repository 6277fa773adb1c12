"""Celery workers for parity comparisons (production): the proxy publishes pair batches,
`celery -A strangler.parity.tasks worker -Q strangler-parity` compares them into
$STRANGLER_PARITY_STORE. Broker: $STRANGLER_PARITY_BROKER; queue: $STRANGLER_PARITY_QUEUE;
/metrics on 127.0.0.1:$STRANGLER_PARITY_METRICS_PORT when set."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from strangler.parity.worker import PairConsumer, pair_from_json

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "strangler-parity"  # its own queue: a monolith's workers never pick these up


def make_app(broker_url: str = "") -> Celery:
    app = Celery(
        "strangler.parity",
        broker=broker_url or os.environ.get("STRANGLER_PARITY_BROKER", DEFAULT_BROKER),
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=os.environ.get("STRANGLER_PARITY_QUEUE", DEFAULT_QUEUE),
    )

    consumers: dict[str, PairConsumer] = {}

    @app.task(name="strangler.parity.compare_pairs")
    def compare_pairs(batch: list[dict[str, Any]]) -> int:
        location = os.environ.get("STRANGLER_PARITY_STORE", "parity.sqlite3")
        consumer = consumers.get(location)
        if consumer is None:
            consumer = consumers[location] = PairConsumer(location)
            port = os.environ.get("STRANGLER_PARITY_METRICS_PORT", "")
            if port.isdigit():
                consumer.metrics.serve("127.0.0.1", int(port))
        consumer([pair_from_json(p) for p in batch])
        return len(batch)

    return app


app = make_app()
