"""Celery task: the relay as a periodic job, for projects that run Celery beat anyway.

Schedule it with e.g. CELERY_BEAT_SCHEDULE["cdc-relay"] = {"task": "strangler.cdc.relay",
"schedule": 1.0}. Each run publishes what the outbox holds, then returns; on PostgreSQL it is
safe next to `manage.py cdc_relay` (row locks), on SQLite run only one of the two.
"""

from __future__ import annotations

from celery import shared_task

from strangler.cdc import conf
from strangler.cdc.relay import Relay


@shared_task(name="strangler.cdc.relay", ignore_result=True)
def relay(using: str = "default", max_batches: int = 1000) -> int:
    """Publish the outbox until it is empty (or `max_batches`); returns rows published."""
    worker = Relay(conf.current(), using=using)
    try:
        worker.ensure_topics()
        return worker.drain(max_batches)
    finally:
        worker.close()
