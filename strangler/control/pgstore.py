"""Route table in PostgreSQL, shared by every proxy replica.

Each accepted table is one row (version, who, when, why, before, after). Every commit
sends NOTIFY on channel `strangler_routes`; watchers LISTEN on a connection of their own,
so a flip reaches every replica at once, and fall back to polling `max(version)` when
that connection is lost.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from strangler.control.store import (
    ConcurrentChange,
    RouteStore,
    StoreUnavailable,
    Version,
    validated,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS strangler_route_versions (
    version integer PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    who text NOT NULL,
    why text NOT NULL,
    before jsonb,
    after jsonb NOT NULL
)
"""
LOCK_KEY = 0x5374726E  # advisory lock serialising writers across hosts
CHANNEL = "strangler_routes"
COLUMNS = (
    "version, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS+00:00'), "
    "who, why, before, after"
)


class PostgresStore(RouteStore):
    """A versioned route table in one PostgreSQL table; one connection, guarded by a lock."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None  # the watcher thread's own
        try:
            with self._lock:
                self._connection().execute(SCHEMA)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(
                f"cannot reach the PostgreSQL route store: {str(error).strip()}"
            ) from error

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except psycopg.OperationalError:
                self._conn = None  # reconnect on the next call
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def wait_for_change(self, timeout: float) -> bool | None:
        """Wait on LISTEN for a commit's NOTIFY; None while the database cannot be reached."""
        try:
            if self._listener is None or self._listener.closed:
                listener = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                listener.execute(f"LISTEN {CHANNEL}")
                self._listener = listener
                return True  # a change may have landed before LISTEN: have it checked
            return any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except psycopg.OperationalError:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            return None

    @staticmethod
    def _version(row: tuple[Any, ...]) -> Version:
        number, at, who, why, before, after = row
        table, _ = validated(after)
        return Version(number, table, after, who, at, why, before)

    def change_token(self) -> object:
        return self._query("SELECT max(version) FROM strangler_route_versions")[0][0]

    def is_empty(self) -> bool:
        return self.change_token() is None

    def current(self) -> Version:
        rows = self._query(
            f"SELECT {COLUMNS} FROM strangler_route_versions ORDER BY version DESC LIMIT 1"
        )
        if not rows:
            raise LookupError(
                "the PostgreSQL route store is empty: push a table with `strangler route set FILE`"
            )
        return self._version(rows[0])

    def history(self, limit: int = 50) -> list[Version]:
        rows = self._query(
            f"SELECT {COLUMNS} FROM strangler_route_versions ORDER BY version DESC LIMIT %s",
            (limit,),
        )
        return [self._version(r) for r in rows]

    def get(self, number: int) -> Version | None:
        rows = self._query(
            f"SELECT {COLUMNS} FROM strangler_route_versions WHERE version = %s", (number,)
        )
        return self._version(rows[0]) if rows else None

    def _commit(self, raw: dict[str, Any], who: str, why: str, expect: int | None) -> Version:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                    last = conn.execute(
                        "SELECT version, after FROM strangler_route_versions "
                        "ORDER BY version DESC LIMIT 1"
                    ).fetchone()
                    number = last[0] if last else 0
                    if expect is not None and number != expect:
                        raise ConcurrentChange(f"table is at version {number}, not {expect}")
                    row = conn.execute(
                        f"INSERT INTO strangler_route_versions (version, who, why, before, after)"
                        f" VALUES (%s, %s, %s, %s, %s) RETURNING {COLUMNS}",
                        (number + 1, who, why, Jsonb(last[1]) if last else None, Jsonb(raw)),
                    ).fetchone()
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(number + 1)))
            except psycopg.OperationalError:
                self._conn = None
                raise
        assert row is not None
        return self._version(row)
