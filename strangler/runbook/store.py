"""Runs persisted in SQLite (embedded default) or PostgreSQL, same SQL, with a lease lock.

A run row holds the definition it was started with, its parameters and where it is; the
events table holds every action (before and after), gate evaluation, approval and decision.
The lease (owner + expiry) refuses a second runner and expires when its holder dies; a
claim per route (route store + route id) refuses a second active run moving the same route.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from strangler.sqlite import use_wal

RunState = Literal["running", "paused", "done", "aborted"]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS strangler_runbook_runs (
        id TEXT PRIMARY KEY, runbook TEXT NOT NULL, source TEXT NOT NULL,
        definition TEXT NOT NULL, params TEXT NOT NULL, env TEXT NOT NULL,
        state TEXT NOT NULL, step TEXT NOT NULL, reason TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        lease_owner TEXT, lease_until DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS strangler_runbook_events (
        id {serial} PRIMARY KEY, run_id TEXT NOT NULL, at TEXT NOT NULL, step TEXT NOT NULL,
        attempt INTEGER NOT NULL, kind TEXT NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL,
        data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS strangler_runbook_events_run "
    "ON strangler_runbook_events (run_id, id)",
    """CREATE TABLE IF NOT EXISTS strangler_runbook_claims (
        routes TEXT NOT NULL, route TEXT NOT NULL, run_id TEXT NOT NULL,
        PRIMARY KEY (routes, route))""",
)
FINISHED = ("done", "aborted")
SCHEMA_LOCK = 0x5275_6E62  # advisory lock key taken while PostgreSQL creates the tables


class StoreError(Exception):
    """The run store cannot be opened or used; the message names it."""


class LeaseHeld(Exception):
    """Another runner holds this run's lease; the message says who and until when."""


class RunMoved(Exception):
    """Someone paused, rolled back or aborted the run while its runner was busy; the runner
    stops instead of writing over that (the message says what the run is now)."""


class RouteClaimed(Exception):
    """Another active run (running or paused) moves this route; the message names it."""


class NoSuchRun(LookupError):
    """No run with that id in the store."""


@dataclass(frozen=True)
class Run:
    """A run as stored: what it runs, with which parameters, where it is."""

    id: str
    runbook: str
    source: str
    definition: str
    params: dict[str, str]
    env: dict[str, Any]
    state: RunState
    step: str
    reason: str
    created_at: str
    updated_at: str
    lease_owner: str | None
    lease_until: float | None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "runbook": self.runbook,
            "state": self.state,
            "step": self.step,
            "reason": self.reason,
            "params": self.params,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "runner": self.lease_owner
            if self.lease_until and self.lease_until > time.time()
            else None,
        }


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run: an action, a gate evaluation, a decision."""

    id: int
    run_id: str
    at: str
    step: str
    attempt: int
    kind: str
    who: str
    why: str
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "step": self.step,
            "attempt": self.attempt,
            "kind": self.kind,
            "who": self.who,
            "why": self.why,
            "data": self.data,
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


RUN_COLUMNS = (
    "id, runbook, source, definition, params, env, state, step, reason, created_at, "
    "updated_at, lease_owner, lease_until"
)


class RunStore:
    """Runs and their events in one SQL database (sqlite3 or psycopg, `%s` placeholders)."""

    def __init__(self, location: str, create: bool = True) -> None:
        """Open (and with `create`, make) the store; reading commands pass create=False so a
        mistyped path is an error, not a new empty store."""
        self.location = location
        self.postgres = location.startswith(("postgresql://", "postgres://"))
        if not create and not self.postgres and not Path(location).is_file():
            raise StoreError(
                f"no run store at {location}: runs are created by `strangler runbook run` "
                "(pass the same --store, or set $STRANGLER_RUNBOOK_STORE)"
            )
        try:
            if self.postgres:
                import psycopg

                self.conn: Any = psycopg.connect(location, autocommit=True)
            else:
                Path(location).parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(location, timeout=30, isolation_level=None)
                use_wal(self.conn, timeout=30)
            serial = "BIGSERIAL" if self.postgres else "INTEGER"
            with self._transaction():
                if self.postgres:  # concurrent CREATE ... IF NOT EXISTS can still collide
                    self._execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in SCHEMA:
                    self._execute(statement.format(serial=serial))
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the run store {location}: {error}") from error
        except Exception as error:  # psycopg.Error without importing psycopg for SQLite users
            if type(error).__module__.startswith("psycopg"):
                raise StoreError(f"cannot open the run store {location}: {error}") from error
            raise

    def close(self) -> None:
        self.conn.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if not self.postgres:
            sql = sql.replace("%s", "?")
        return self.conn.execute(sql, tuple(params))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.postgres:
            with self.conn.transaction():
                yield
        else:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def create(
        self,
        runbook: str,
        source: str,
        definition: str,
        params: dict[str, str],
        env: dict[str, Any],
        first_step: str,
        who: str,
        why: str,
        routes: str = "",
        claims: Mapping[str, int] | None = None,
    ) -> Run:
        """A new run at its first step, recorded with who started it and why.

        `claims` maps each route of the route store `routes` the run moves to the table
        version it starts from; RouteClaimed if another active run holds one of them.
        """
        run_id = uuid.uuid4().hex[:12]
        at = now_iso()
        claimed = dict(claims or {})
        row = (run_id, runbook, source, definition, json.dumps(params), json.dumps(env))
        try:
            with self._transaction():
                self._execute(
                    f"INSERT INTO strangler_runbook_runs ({RUN_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL)",
                    (*row, "running", first_step, "", at, at),
                )
                self._claim(run_id, routes, sorted(claimed))
                data = {"params": params, "routes": claimed}
                self._event(run_id, first_step, 0, "run_created", who, why, data)
        except Exception as error:
            if _unique_violation(error):  # a run claiming the same route committed first
                held = self._claimed(routes, sorted(claimed))
                raise held or RouteClaimed(f"{sorted(claimed)}: claimed meanwhile") from error
            raise
        return self.get(run_id)

    def _claim(self, run_id: str, routes: str, names: list[str]) -> None:
        """Claim `names` for `run_id` (inside create's transaction); RouteClaimed if held."""
        if not names:
            return
        self._execute(
            "DELETE FROM strangler_runbook_claims WHERE run_id IN (SELECT id FROM "
            "strangler_runbook_runs WHERE state IN ('done', 'aborted'))"
        )
        held = self._claimed(routes, names)
        if held is not None:
            raise held
        for name in names:
            self._execute(
                "INSERT INTO strangler_runbook_claims (routes, route, run_id) VALUES (%s, %s, %s)",
                (routes, name, run_id),
            )

    def _claimed(self, routes: str, names: list[str]) -> RouteClaimed | None:
        """The refusal naming the active run that holds one of `names`, if any does."""
        marks = ", ".join(["%s"] * len(names))
        row = self._execute(
            "SELECT c.route, r.id, r.runbook, r.state, r.step FROM strangler_runbook_claims c "
            "JOIN strangler_runbook_runs r ON r.id = c.run_id WHERE c.routes = %s AND "
            f"c.route IN ({marks}) AND r.state NOT IN ('done', 'aborted') ORDER BY c.route",
            (routes, *names),
        ).fetchone()
        if row is None:
            return None
        route, other, runbook, state, step = row
        return RouteClaimed(
            f"route {route} is being moved by run {other} ({runbook}, {state} at {step}): "
            f"one active run per route; finish it with `strangler runbook resume {other}`, "
            f"undo its traffic with `strangler runbook rollback {other}`, or stop it with "
            f"`strangler runbook abort {other}`"
        )

    def get(self, run_id: str) -> Run:
        row = self._execute(
            f"SELECT {RUN_COLUMNS} FROM strangler_runbook_runs WHERE id = %s", (run_id,)
        ).fetchone()
        if row is None:
            raise NoSuchRun(
                f"no run {run_id!r} in {self.location}; see `strangler runbook history`"
            )
        return _run(row)

    def runs(self, limit: int = 20) -> list[Run]:
        rows = self._execute(
            f"SELECT {RUN_COLUMNS} FROM strangler_runbook_runs ORDER BY created_at DESC, id "
            "LIMIT %s",
            (limit,),
        ).fetchall()
        return [_run(row) for row in rows]

    def events(self, run_id: str, *kinds: str) -> list[Event]:
        """The run's events in order; only those of `kinds` when given."""
        where = f" AND kind IN ({', '.join(['%s'] * len(kinds))})" if kinds else ""
        rows = self._execute(
            "SELECT id, run_id, at, step, attempt, kind, who, why, data "
            f"FROM strangler_runbook_events WHERE run_id = %s{where} ORDER BY id",
            (run_id, *kinds),
        ).fetchall()
        return [
            Event(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], json.loads(row[8])
            )
            for row in rows
        ]

    def _event(
        self, run_id: str, step: str, attempt: int, kind: str, who: str, why: str, data: Any
    ) -> None:
        self._execute(
            "INSERT INTO strangler_runbook_events (run_id, at, step, attempt, kind, who, why, "
            "data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, now_iso(), step, attempt, kind, who, why, json.dumps(data, default=str)),
        )

    def record(
        self,
        run_id: str,
        step: str,
        attempt: int,
        kind: str,
        who: str,
        why: str = "",
        data: Any = None,
        state: RunState | None = None,
        reason: str | None = None,
        owner: str | None = None,
        move_to: str | None = None,
        while_state: RunState | None = None,
    ) -> None:
        """Append an event and optionally change the run's state/step, in one transaction.

        With `owner`, the write happens only while that runner still holds the lease, so a
        runner that stalled past its lease cannot write over the one that took over; with
        `while_state`, only while the run is still in that state (RunMoved otherwise), so a
        runner never writes over a pause, rollback or abort made while it was busy.
        """
        with self._transaction():
            if owner is not None or while_state is not None:
                lock = " FOR UPDATE" if self.postgres else ""  # SQLite: BEGIN IMMEDIATE locks
                holder, now_in, because = self._execute(
                    "SELECT lease_owner, state, reason FROM strangler_runbook_runs "
                    f"WHERE id = %s{lock}",
                    (run_id,),
                ).fetchone() or (None, None, "")
                if owner is not None and holder != owner:
                    raise LeaseHeld(f"run {run_id}: this runner lost its lease")
                if while_state is not None and now_in != while_state:
                    raise RunMoved(f"run {run_id} is {now_in}: {because}")
            self._event(run_id, step, attempt, kind, who, why, data or {})
            if state is not None or reason is not None or move_to is not None:
                current = self.get(run_id)
                self._execute(
                    "UPDATE strangler_runbook_runs SET state = %s, step = %s, reason = %s, "
                    "updated_at = %s WHERE id = %s",
                    (
                        state or current.state,
                        current.step if move_to is None else move_to,
                        current.reason if reason is None else reason,
                        now_iso(),
                        run_id,
                    ),
                )
                if state in FINISHED:  # its routes are free for the next run
                    self._execute(
                        "DELETE FROM strangler_runbook_claims WHERE run_id = %s", (run_id,)
                    )

    def acquire(self, run_id: str, owner: str, ttl: float) -> None:
        """Take the run's lease, or raise LeaseHeld while another live runner has it.

        One conditional UPDATE, so two runners starting at the same moment cannot both win.
        """
        now = time.time()
        cursor = self._execute(
            "UPDATE strangler_runbook_runs SET lease_owner = %s, lease_until = %s "
            "WHERE id = %s AND (lease_owner IS NULL OR lease_owner = %s OR lease_until < %s)",
            (owner, now + ttl, run_id, owner, now),
        )
        if cursor.rowcount == 1:
            return
        run = self.get(run_id)  # NoSuchRun when there is no such run
        until = run.lease_until or now
        raise LeaseHeld(
            f"run {run_id} is being run by {run.lease_owner} (lease valid "
            f"{until - now:.0f}s more; it expires if that runner died)"
        )

    def renew(self, run_id: str, owner: str, ttl: float) -> Run:
        """Extend the lease; LeaseHeld if someone else took it meanwhile."""
        cursor = self._execute(
            "UPDATE strangler_runbook_runs SET lease_until = %s WHERE id = %s AND lease_owner = %s",
            (time.time() + ttl, run_id, owner),
        )
        if cursor.rowcount != 1:
            raise LeaseHeld(f"run {run_id}: this runner lost its lease")
        return self.get(run_id)

    def release(self, run_id: str, owner: str) -> None:
        self._execute(
            "UPDATE strangler_runbook_runs SET lease_owner = NULL, lease_until = NULL "
            "WHERE id = %s AND lease_owner = %s",
            (run_id, owner),
        )


def _unique_violation(error: Exception) -> bool:
    """A primary key taken by a concurrent insert (sqlite3 or psycopg, without importing it)."""
    return isinstance(error, sqlite3.IntegrityError) or type(error).__name__ == "UniqueViolation"


def _run(row: Sequence[Any]) -> Run:
    return Run(
        id=row[0],
        runbook=row[1],
        source=row[2],
        definition=row[3],
        params=json.loads(row[4]),
        env=json.loads(row[5]),
        state=row[6],
        step=row[7],
        reason=row[8],
        created_at=row[9],
        updated_at=row[10],
        lease_owner=row[11],
        lease_until=row[12],
    )
