"""`manage.py cdc_consume`: apply change events from Kafka until SIGTERM/SIGINT."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from strangler.cdc import conf
from strangler.cdc.consumer import Consumer
from strangler.cdc.running import Stopper, log_json_lines, serve_metrics


class Command(BaseCommand):
    help = (
        "Consume the mapped tables' topics and apply their events idempotently; offsets are "
        "committed after the database commit. SIGTERM finishes the batch in flight, then exits."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", default="default", help="database alias to apply to")
        parser.add_argument(
            "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port"
        )
        parser.add_argument(
            "--log-json", action="store_true", help="log as JSON lines on stderr (INFO and up)"
        )

    def handle(
        self, *args: Any, database: str, metrics_port: int, log_json: bool, **options: Any
    ) -> None:
        if log_json:
            log_json_lines()
        settings = conf.current()
        if settings.consume is None:
            raise CommandError(
                "STRANGLER_CDC has no 'consume' section: nothing to consume. See docs/cdc.md."
            )
        stopper = Stopper()
        stopper.install_signal_handlers()
        consumer = Consumer(settings, using=database, stopper=stopper)
        serve_metrics(metrics_port, consumer.metrics.registry)
        self.stdout.write("cdc consumer running")
        self.stdout.flush()
        consumer.run()
        self.stdout.write("cdc consumer stopped")
