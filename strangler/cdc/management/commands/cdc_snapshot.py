"""`manage.py cdc_snapshot TABLE`: backfill a captured table as op=r events (resumable)."""

from __future__ import annotations

import json as _json
from argparse import ArgumentParser
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from strangler.cdc.running import Stopper
from strangler.cdc.snapshot import SnapshotError, snapshot


class Command(BaseCommand):
    help = (
        "Emit every row of a captured table as op=r events through the outbox, in chunks. "
        "Safe while the application keeps writing; resumes where an interrupted run stopped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "tables",
            nargs="+",
            help="captured tables: table names (catalog_product) or model labels (catalog.Product)",
        )
        parser.add_argument("--database", default="default")
        parser.add_argument("--chunk-size", type=int, default=1000)
        parser.add_argument("--restart", action="store_true", help="start over, not resume")
        parser.add_argument("--json", action="store_true")

    def handle(
        self,
        *args: Any,
        tables: list[str],
        database: str,
        chunk_size: int,
        restart: bool,
        json: bool,
        **options: Any,
    ) -> None:
        stopper = Stopper()
        stopper.install_signal_handlers()
        results = []
        for table in tables:
            try:
                results.append(snapshot(database, table, chunk_size, restart, stopper))
            except SnapshotError as error:
                raise CommandError(str(error)) from error
        for result in results:
            if json:
                self.stdout.write(_json.dumps(asdict(result), default=str))
            else:
                state = "done" if result.done else "interrupted (run again to resume)"
                self.stdout.write(
                    f"{result.table}: {result.rows} rows in {result.chunks} chunks, {state}"
                )
