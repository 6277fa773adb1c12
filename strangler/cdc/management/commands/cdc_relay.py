"""`manage.py cdc_relay`: publish the outbox to Kafka until SIGTERM/SIGINT."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from strangler.cdc import conf
from strangler.cdc.checks import CHECK_TAG
from strangler.cdc.relay import Relay
from strangler.cdc.running import Stopper, log_json_lines, serve_metrics


class Command(BaseCommand):
    help = (
        "Publish outbox rows to Kafka (one topic per table, keyed by primary key) until "
        "stopped. SIGTERM finishes the batch in flight, then exits. Several relays may run "
        "against PostgreSQL; run one against SQLite."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", default="default", help="database alias to relay")
        parser.add_argument(
            "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port"
        )
        parser.add_argument(
            "--log-json", action="store_true", help="log as JSON lines on stderr (INFO and up)"
        )
        parser.add_argument(
            "--once", action="store_true", help="publish what is there now, then exit"
        )

    def handle(
        self,
        *args: Any,
        database: str,
        metrics_port: int,
        once: bool,
        log_json: bool,
        **options: Any,
    ) -> None:
        if log_json:
            log_json_lines()
        # Database checks (cdc.W001: a captured table without its triggers) are not part of
        # a command's usual start-up checks; the relay is where missing capture shows.
        self.check(tags=[CHECK_TAG], databases=[database])
        relay = Relay(conf.current(), using=database)
        if once:
            try:
                self.stdout.write(f"published {relay.drain()} outbox rows")
            finally:
                relay.close()
            return
        stopper = Stopper()
        stopper.install_signal_handlers()
        serve_metrics(metrics_port, relay.metrics.registry)
        self.stdout.write("cdc relay running", ending="\n")
        self.stdout.flush()
        relay.run(stopper)
        self.stdout.write("cdc relay stopped")
