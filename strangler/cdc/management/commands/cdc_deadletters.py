"""`manage.py cdc_deadletters list|replay`: inspect and replay parked keys' events."""

from __future__ import annotations

import json as _json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from strangler.cdc import conf, deadletters
from strangler.cdc.mapping import resolve


class Command(BaseCommand):
    help = (
        "list: the dead letters (each parks its key). replay: apply a parked key's events in "
        "order and unpark it; --discard marks them handled without applying."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["list", "replay"])
        parser.add_argument("--database", default="default")
        parser.add_argument("--table", help="only this source table (e.g. catalog_product)")
        parser.add_argument("--key", help="only this key (the source row's primary key)")
        parser.add_argument("--all", action="store_true", help="list: include replayed ones")
        parser.add_argument("--discard", action="store_true")
        parser.add_argument("--json", action="store_true")

    def handle(
        self,
        *args: Any,
        action: str,
        database: str,
        table: str | None,
        key: str | None,
        all: bool,
        discard: bool,
        json: bool,
        **options: Any,
    ) -> None:
        settings = conf.current()
        mapped = (
            sorted(m.source_table for m in settings.consume.mappings) if settings.consume else []
        )
        if table is not None and mapped and table not in mapped:
            raise CommandError(
                f"--table {table!r} is not a source table this service consumes; "
                f"its mappings name {', '.join(mapped)}.",
                returncode=2,
            )
        if action == "list":
            letters = deadletters.pending(database, include_replayed=all, table=table, key=key)
            rows = [
                {
                    "id": d.id,
                    "topic": d.topic,
                    "partition": d.partition,
                    "offset": d.offset,
                    "table": d.source_table,
                    "key": d.key,
                    "seq": d.seq,
                    "error": d.error,
                    "attempts": d.attempts,
                    "created_at": d.created_at.isoformat(),
                    "replayed_at": d.replayed_at.isoformat() if d.replayed_at else None,
                }
                for d in letters
            ]
            if json:
                self.stdout.write(_json.dumps(rows))
            for row in [] if json else rows:
                self.stdout.write(
                    f"#{row['id']} {row['table']}[{row['key']}] seq={row['seq']} "
                    f"{row['topic']}/{row['partition']}@{row['offset']}: {row['error']}"
                )
            return
        if settings.consume is None:
            raise CommandError("STRANGLER_CDC has no 'consume' section: nothing to replay.")
        mappings = {m.source_table: resolve(m) for m in settings.consume.mappings}
        outcomes = deadletters.replay(mappings, database, table, key, discard)
        if not outcomes and (table is not None or key is not None):
            # A replay that matched nothing must not look like one that worked.
            wanted = " ".join(f"--{n} {v}" for n, v in (("table", table), ("key", key)) if v)
            self.stderr.write(
                f"no pending dead letters match {wanted}: nothing replayed. "
                "`dead-letters list` shows the pending ones (a key parked for a missing "
                "parent may have been applied on its own since)."
            )
            raise SystemExit(1)
        if json:
            self.stdout.write(_json.dumps([o.__dict__ for o in outcomes]))
        elif not outcomes:
            self.stdout.write("no pending dead letters: nothing to replay")
        else:
            for o in outcomes:
                state = "replayed" if o.replayed else f"still failing: {o.error}"
                self.stdout.write(f"{o.table}[{o.key}]: {o.events} events {state}")
        if any(not o.replayed for o in outcomes):
            raise SystemExit(1)
