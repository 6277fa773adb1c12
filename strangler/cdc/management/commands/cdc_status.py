"""`manage.py cdc_status`: what runbook gates read - outbox lag, dead letters, parked keys."""

from __future__ import annotations

import json as _json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from strangler.cdc import conf
from strangler.cdc.conf import ConsumeSpec
from strangler.cdc.continuity import pending_gaps
from strangler.cdc.envelope import TRUNCATE_KEY
from strangler.cdc.models import AppliedPosition, DeadLetter, PartitionProgress
from strangler.cdc.relay import Relay


class Command(BaseCommand):
    help = (
        "Print this project's change-data status: for a capturing project the outbox "
        "backlog, the age of its oldest unpublished row and the rows parked as too big for "
        "the broker (with --applied-through, also what a receiving project has not applied "
        "yet); for a receiving project the pending dead letters, parked keys, rows tracked, "
        "the newest position applied per source table (applied_through), the last offset "
        "applied per partition (applied_offsets) and the tables whose "
        "events the broker lost (log gaps, until reconcile repairs them). Exit status 1 when "
        "dead letters, log gaps or parked rows are pending."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", default="default")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--applied-through",
            metavar="JSON",
            help="capturing project: the receiving project's applied_through (its `status "
            "--json`), e.g. '{\"catalog_product\": 1234}': adds the changes of those tables "
            "it has not applied (unapplied, oldest_unapplied_seconds), published or not",
        )
        parser.add_argument(
            "--applied-offsets",
            metavar="JSON",
            help="capturing project, with --applied-through: the receiving project's "
            'applied_offsets (its `status --json`), e.g. \'{"catalog_product": {"0": 812}}\''
            ": counts exactly by publish order (a long transaction committed after later ones "
            "counts until applied; applied_through alone misses it)",
        )

    def handle(
        self,
        *args: Any,
        database: str,
        json: bool,
        applied_through: str | None = None,
        applied_offsets: str | None = None,
        **options: Any,
    ) -> None:
        settings = conf.current()
        status: dict[str, object] = {}
        through = _positions(applied_through) if applied_through is not None else None
        offsets = _offsets(applied_offsets) if applied_offsets is not None else None
        if offsets is not None and through is None:
            raise CommandError("--applied-offsets needs --applied-through")
        if offsets is not None and through is not None and set(offsets) - set(through):
            raise CommandError(
                "--applied-offsets: tables not in --applied-through: "
                f"{', '.join(sorted(set(offsets) - set(through)))} (give both from the same "
                "receiving project's `status --json`)"
            )
        if through is not None and not settings.capture:
            raise CommandError("--applied-through: this project captures no tables")
        if settings.capture:
            relay = Relay(settings, using=database)
            lag = relay.lag()
            status["outbox_backlog"] = lag.backlog
            status["oldest_unpublished_seconds"] = round(lag.oldest_age_s, 3)
            status["outbox_parked"] = lag.parked
            if through is not None:
                behind = relay.unapplied(through, offsets)
                status["unapplied"] = behind.backlog
                status["oldest_unapplied_seconds"] = round(behind.oldest_age_s, 3)
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
            status["applied_through"] = applied_through_of(settings.consume, database)
            status["applied_offsets"] = applied_offsets_of(settings.consume, database)
        if json:
            self.stdout.write(_json.dumps(status, sort_keys=True))
        else:
            for name, value in status.items():
                self.stdout.write(f"{name}: {value}")
        if status.get("dead_letters") or status.get("log_gaps") or status.get("outbox_parked"):
            raise SystemExit(1)


def applied_through_of(spec: ConsumeSpec, database: str) -> dict[str, int]:
    """Per mapped source table, the newest position applied from any of its partitions (0
    before the first): a source's outbox rows after it are not applied yet."""
    tables = {spec.topic(m.source_table): m.source_table for m in spec.mappings}
    through = dict.fromkeys(tables.values(), 0)
    rows = PartitionProgress.objects.using(database).filter(topic__in=list(tables))
    for topic, seq in rows.values_list("topic", "seq"):
        if seq is not None:
            through[tables[topic]] = max(through[tables[topic]], seq)
    return through


def applied_offsets_of(spec: ConsumeSpec, database: str) -> dict[str, dict[str, int]]:
    """Per mapped source table, the last offset applied from each of its partitions ({} before
    the first): what the broker acknowledged after it there is not applied yet."""
    tables = {spec.topic(m.source_table): m.source_table for m in spec.mappings}
    offsets: dict[str, dict[str, int]] = {table: {} for table in tables.values()}
    rows = PartitionProgress.objects.using(database).filter(topic__in=list(tables))
    for topic, partition, offset in rows.values_list("topic", "partition", "offset"):
        offsets[tables[topic]][str(partition)] = offset
    return offsets


def _offsets(text: str) -> dict[str, dict[str, int]]:
    value = _parsed("--applied-offsets", text)
    if not isinstance(value, dict) or not all(
        isinstance(table, str)
        and isinstance(partitions, dict)
        and all(
            isinstance(p, str) and p.isascii() and p.isdigit() and type(o) is int and o >= 0
            for p, o in partitions.items()
        )
        for table, partitions in value.items()
    ):
        raise CommandError(
            "--applied-offsets: expected an object of source table -> {partition: offset} "
            "(partitions as digits, offsets integers of 0 or more), as a receiving project's "
            f"`status --json` gives it; got {text!r}"
        )
    return value


def _parsed(option: str, text: str) -> Any:
    try:
        return _json.loads(text)
    except ValueError as error:
        raise CommandError(f"{option}: not JSON ({error})") from error


def _positions(text: str) -> dict[str, int]:
    value = _parsed("--applied-through", text)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in value.items()
    ):
        raise CommandError(
            "--applied-through: expected an object of source table -> position (an integer "
            f"of 0 or more), as a receiving project's `status --json` gives it; got {text!r}"
        )
    return value
