"""Dead letters: list them, and replay a parked key's events in order (which unparks it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from strangler.cdc.apply import apply_events
from strangler.cdc.envelope import EnvelopeError, decode
from strangler.cdc.mapping import TableMapping
from strangler.cdc.models import DeadLetter

# How PostgreSQL (psycopg) and SQLite word a foreign-key violation.
MISSING_PARENT = (
    "ForeignKeyViolation",
    "violates foreign key constraint",
    "FOREIGN KEY constraint",
)


@dataclass(frozen=True)
class ReplayOutcome:
    table: str
    key: str
    events: int
    replayed: bool
    error: str | None = None


def pending(using: str = "default", include_replayed: bool = False) -> list[DeadLetter]:
    query = DeadLetter.objects.using(using).order_by("id")
    if not include_replayed:
        query = query.filter(replayed_at__isnull=True)
    return list(query)


def replay(
    mappings: Mapping[str, TableMapping],
    using: str = "default",
    table: str | None = None,
    key: str | None = None,
    discard: bool = False,
) -> list[ReplayOutcome]:
    """Apply each parked key's dead letters in order; a key stays parked if it fails again.

    With `discard`, mark them replayed without applying (for events that can never apply).
    """
    letters = [
        d
        for d in pending(using)
        if (table is None or d.source_table == table) and (key is None or d.key == key)
    ]
    by_key: dict[tuple[str, str], list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        by_key[(letter.source_table, letter.key)].append(letter)
    outcomes = []
    for (source_table, row_key), group in by_key.items():
        try:
            with transaction.atomic(using=using):
                if not discard:
                    events = [decode(letter.envelope, letter.key) for letter in group]
                    apply_events(mappings, events, using)
                DeadLetter.objects.using(using).filter(id__in=[g.id for g in group]).update(
                    replayed_at=timezone.now()
                )
            outcomes.append(ReplayOutcome(source_table, row_key, len(group), True))
        except (EnvelopeError, LookupError, Exception) as error:
            outcomes.append(ReplayOutcome(source_table, row_key, len(group), False, repr(error)))
    return outcomes


def missing_parent_keys(using: str = "default", limit: int = 500) -> list[tuple[str, str]]:
    """Parked keys whose first dead letter failed for a row its foreign key points at (a
    parent that may have arrived since, from another topic), oldest first."""
    first: dict[tuple[str, str], DeadLetter] = {}
    for letter in pending(using):
        first.setdefault((letter.source_table, letter.key), letter)
    keys = [k for k, letter in first.items() if any(m in letter.error for m in MISSING_PARENT)]
    return keys[:limit]


def retry_missing_parents(
    mappings: Mapping[str, TableMapping], using: str = "default"
) -> list[ReplayOutcome]:
    """Replay the keys parked for a missing parent; those still missing one stay parked."""
    outcomes = []
    for table, key in missing_parent_keys(using):
        outcomes += replay(mappings, using, table, key)
    return outcomes
