"""`manage.py cdc_reconcile`: compare source and target, report drift, optionally repair."""

from __future__ import annotations

import json as _json
from argparse import ArgumentParser
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from strangler.cdc import conf
from strangler.cdc.continuity import resolve_gaps
from strangler.cdc.mapping import resolve
from strangler.cdc.reconcile import reconcile
from strangler.cdc.reconcile import repair as repair_drift


class Command(BaseCommand):
    help = (
        "Compare each mapped source table with its target model by key ranges and checksums; "
        "report missing, extra and different keys. --repair re-emits events for exactly those "
        "keys through the source's outbox. Exit status 1 when drift was found."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--source", help="alias of the source database (default: setting)")
        parser.add_argument("--table", action="append", help="only these source tables")
        parser.add_argument("--chunk-size", type=int, default=1000)
        parser.add_argument("--repair", action="store_true")
        parser.add_argument("--json", action="store_true")

    def handle(
        self,
        *args: Any,
        source: str | None,
        table: list[str] | None,
        chunk_size: int,
        repair: bool,
        json: bool,
        **options: Any,
    ) -> None:
        settings = conf.current()
        if settings.consume is None:
            raise CommandError("STRANGLER_CDC has no 'consume' section: nothing to reconcile.")
        source = source or settings.consume.source_database
        if not source or source not in connections.settings:
            raise CommandError(
                f"source database alias {source!r} is not in DATABASES: configure the "
                "monolith's database (e.g. CDC_SOURCE_DATABASE_URL) or pass --source."
            )
        mappings = [
            resolve(m) for m in settings.consume.mappings if not table or m.source_table in table
        ]
        drifts = reconcile(mappings, source, chunk=chunk_size)
        repaired = repair_drift(drifts, source) if repair else {}
        total = sum(d.drifted for d in drifts)
        # A table the broker lost events of is back in sync once it shows no drift or its
        # drift was re-emitted.
        resolved = resolve_gaps("default", [d.table for d in drifts if repair or not d.drifted])
        if json:
            self.stdout.write(
                _json.dumps(
                    {
                        "drifted": total,
                        "tables": [asdict(d) | {"drifted": d.drifted} for d in drifts],
                        "repaired": repaired,
                        "log_gaps_resolved": resolved,
                    },
                    default=str,
                )
            )
        else:
            for d in drifts:
                self.stdout.write(
                    f"{d.table} -> {d.model}: {d.source_rows} source rows, {d.target_rows} "
                    f"target rows, {d.ranges_differing}/{d.ranges} ranges differ; missing "
                    f"{list(d.missing)}, extra {list(d.extra)}, different {list(d.different)}"
                    + (f" (columns {', '.join(d.different_columns)})" if d.different else "")
                )
                if d.fields_not_carried:
                    self.stdout.write(
                        f"  note: no source column lands on {', '.join(d.fields_not_carried)} "
                        f"of {d.model}, so no event writes them and they are not compared. "
                        "Renamed or dropped in the source? Map the new name with 'rename'. "
                        "Owned by this service? List them in the mapping's 'drop'."
                    )
            if resolved:
                self.stdout.write(f"log gaps resolved: {resolved}")
            for table_name, (reads, deletes) in repaired.items():
                self.stdout.write(
                    f"repair: re-emitted {reads} rows, {deletes} deletes of {table_name}"
                )
        if total:
            raise SystemExit(1)
