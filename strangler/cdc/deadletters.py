"""Dead letters: list them, and replay a parked key's events in order (which unparks it)."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from django.db import DatabaseError, OperationalError, connections, transaction
from django.db.models import Min, Q
from django.utils import timezone

from strangler.cdc.apply import apply_events, in_values
from strangler.cdc.envelope import EnvelopeError, decode
from strangler.cdc.mapping import TableMapping
from strangler.cdc.models import DeadLetter

# Advisory locks, one per source table: a consumer batch deciding which of its keys are parked
# holds its tables' shared; a replay round holds its table's exclusive (see `parking`).
PARKING_LOCK_CLASS = 73_003
PARKING_WAIT_S = 30  # how long a replay round waits for those batches before it gives up
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


def pending(
    using: str = "default",
    include_replayed: bool = False,
    table: str | None = None,
    key: str | None = None,
) -> list[DeadLetter]:
    """The dead letters not replayed yet (all of them with `include_replayed`), oldest first,
    of one source table and key when given."""
    query = DeadLetter.objects.using(using).order_by("id")
    if not include_replayed:
        query = query.filter(replayed_at__isnull=True)
    if table is not None:
        query = query.filter(source_table=table)
    if key is not None:
        query = query.filter(key=key)
    return list(query)


@contextlib.contextmanager
def parking(using: str, tables: Iterable[str]) -> Iterator[None]:
    """Hold `tables` against replays (PostgreSQL) while a consumer batch reads which of its
    keys are parked and parks or applies their events.

    Else a replay could apply a key's letters and find none pending between the batch's
    read (parked) and its write (a newer letter behind them): reported replayed, the key
    still parked. Session-level and shared: batches never wait for each other. SQLite has
    one writer at a time.
    """
    connection = connections[using]
    held = sorted(set(tables)) if connection.vendor == "postgresql" else []
    with connection.cursor() as cursor:
        for table in held:
            cursor.execute(
                "SELECT pg_advisory_lock_shared(%s, hashtext(%s))", [PARKING_LOCK_CLASS, table]
            )
    try:
        yield
    finally:
        # A broken connection took its session's locks with it.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            for table in held:
                cursor.execute(
                    "SELECT pg_advisory_unlock_shared(%s, hashtext(%s))",
                    [PARKING_LOCK_CLASS, table],
                )


class ParkingBusy(Exception):
    """A replay round waited PARKING_WAIT_S for consumer batches of its table."""


def _lock_parking(using: str, table: str) -> None:
    """Inside a replay round's transaction: wait for the batches deciding on `table`'s keys,
    at most PARKING_WAIT_S (then the round fails saying so, rather than hang)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{int(PARKING_WAIT_S * 1000)}ms'")
        try:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [PARKING_LOCK_CLASS, table]
            )
        except OperationalError as error:
            raise ParkingBusy(
                f"waited {PARKING_WAIT_S} s for consumer batches of {table} that are deciding "
                "which keys are parked: is a consumer stuck (its database session holds "
                "them)? Try again"
            ) from error
        cursor.execute("SET LOCAL lock_timeout = DEFAULT")


# Rounds of `replay` per key: letters the consumer parks while one round applies are taken by
# the next, and a key whose letters keep arriving is reported still parked after these.
REPLAY_ROUNDS = 5


def replay(
    mappings: Mapping[str, TableMapping],
    using: str = "default",
    table: str | None = None,
    key: str | None = None,
    discard: bool = False,
) -> list[ReplayOutcome]:
    """Apply each parked key's dead letters in order; a key stays parked if it fails again.

    With `discard`, mark them replayed without applying (for events that can never apply).
    A key is reported replayed only when no pending letter of it remains afterwards.
    """
    if table is not None and key is not None:
        keys: Iterable[tuple[str, str]] = [(table, key)]
    else:
        query = DeadLetter.objects.using(using).filter(replayed_at__isnull=True)
        if table is not None:
            query = query.filter(source_table=table)
        if key is not None:
            query = query.filter(key=key)
        # One row per key, in the order of its first letter (each round reads its letters).
        firsts = query.values_list("source_table", "key").annotate(first=Min("id"))
        keys = [(t, k) for t, k, _ in firsts.order_by("first")]
    outcomes = [_replay_key(mappings, using, t, k, discard) for t, k in keys]
    return [outcome for outcome in outcomes if outcome is not None]


def _replay_key(
    mappings: Mapping[str, TableMapping],
    using: str,
    table: str,
    key: str,
    discard: bool,
) -> ReplayOutcome | None:
    """Replay one key's pending letters, then, round after round, those the consumer parked
    behind them meanwhile (the key stays parked while any is pending), at most `REPLAY_ROUNDS`;
    None when it had none."""
    events, letters = 0, []
    for round_ in range(REPLAY_ROUNDS + 1):
        try:
            with transaction.atomic(using=using):
                _lock_parking(using, table)
                # Read under the lock: no batch is between reading the key parked and parking.
                letters = pending(using, table=table, key=key)
                if not letters:
                    return ReplayOutcome(table, key, events, True) if round_ else None
                if round_ == REPLAY_ROUNDS:
                    break
                if not discard:
                    apply_events(mappings, [decode(d.envelope, d.key) for d in letters], using)
                DeadLetter.objects.using(using).filter(id__in=[d.id for d in letters]).update(
                    replayed_at=timezone.now()
                )
        except (EnvelopeError, LookupError, Exception) as error:
            return ReplayOutcome(table, key, events + len(letters), False, repr(error))
        events += len(letters)
    return ReplayOutcome(
        table,
        key,
        events,
        False,
        f"still parked: {len(letters)} newer dead letters arrived while it was replayed "
        f"{REPLAY_ROUNDS} times; replay it again",
    )


def parked(using: str, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of `keys` (source table, key) are parked, read for those keys alone: however many
    keys another table has parked, a batch costs what its own keys cost.

    Plain SQL on the pending-letters index: it runs before every batch, and the ORM spent
    a tenth of the consumer's time preparing the `IN` values one by one.
    """
    by_table: dict[str, list[str]] = defaultdict(list)
    for table, key in set(keys):
        by_table[table].append(key)
    connection = connections[using]
    found: set[tuple[str, str]] = set()
    with connection.cursor() as cursor:
        for table, table_keys in by_table.items():
            for condition, params in in_values(connection, table_keys):
                cursor.execute(
                    f"SELECT DISTINCT key FROM {DeadLetter._meta.db_table} "
                    f"WHERE replayed_at IS NULL AND source_table = %s AND key {condition}",
                    [table, *params],
                )
                found.update((table, key) for (key,) in cursor.fetchall())
    return found


class ParkedKey(NamedTuple):
    first_letter: int  # the id of its first dead letter: the order keys take their turns in
    table: str
    key: str


def missing_parent_keys(
    using: str = "default", limit: int = 500, after: int = 0
) -> list[ParkedKey]:
    """Parked keys whose first dead letter failed for a row its foreign key points at (a
    parent that may have arrived since, from another topic), by first letter after `after`."""
    firsts = (
        DeadLetter.objects.using(using)
        .filter(replayed_at__isnull=True)
        .values("source_table", "key")
        .annotate(first=Min("id"))
        .values("first")
    )
    missing = Q()
    for wording in MISSING_PARENT:
        missing |= Q(error__contains=wording)
    rows = (
        DeadLetter.objects.using(using)
        .filter(missing, id__in=firsts, id__gt=after)
        .order_by("id")
        .values_list("id", "source_table", "key")[:limit]
    )
    return [ParkedKey(*row) for row in rows]
