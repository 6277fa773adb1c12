"""`manage.py cdc_status`: what runbook gates read - outbox lag, dead letters, parked keys."""

from __future__ import annotations

import json as _json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from strangler.cdc import conf
from strangler.cdc.continuity import pending_gaps
from strangler.cdc.envelope import TRUNCATE_KEY
from strangler.cdc.models import AppliedPosition, DeadLetter
from strangler.cdc.relay import Relay


class Command(BaseCommand):
    help = (
        "Print this project's change-data status: for a capturing project the outbox "
        "backlog, the age of its oldest unpublished row and the rows parked as too big for "
        "the broker; for a receiving project the pending dead letters, parked keys, rows "
        "tracked and the tables whose events the broker lost (log gaps, until reconcile "
        "repairs them). Exit status 1 when dead letters, log gaps or parked rows are pending."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", default="default")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, database: str, json: bool, **options: Any) -> None:
        settings = conf.current()
        status: dict[str, object] = {}
        if settings.capture:
            lag = Relay(settings, using=database).lag()
            status["outbox_backlog"] = lag.backlog
            status["oldest_unpublished_seconds"] = round(lag.oldest_age_s, 3)
            status["outbox_parked"] = lag.parked
        if settings.consume is not None:
            pending = DeadLetter.objects.using(database).filter(replayed_at__isnull=True)
            status["dead_letters"] = pending.count()
            status["parked_keys"] = pending.values("source_table", "key").distinct().count()
            gaps = pending_gaps(database)
            status["log_gaps"] = len(gaps)
            status["log_gap_tables"] = sorted({g.source_table for g in gaps})
            status["rows_tracked"] = (
                AppliedPosition.objects.using(database).exclude(key=TRUNCATE_KEY).count()
            )
        if json:
            self.stdout.write(_json.dumps(status, sort_keys=True))
        else:
            for name, value in status.items():
                self.stdout.write(f"{name}: {value}")
        if status.get("dead_letters") or status.get("log_gaps") or status.get("outbox_parked"):
            raise SystemExit(1)
