"""Where comparison counts live: SQLite (embedded default) or PostgreSQL, with the same SQL.

Counts are kept per route, endpoint and minute window; up to EXAMPLES_PER_FIELD example pairs
per differing field; windows older than the retention are deleted as new ones are written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strangler.parity.tally import EXAMPLES_PER_FIELD, WINDOW_SECONDS, Tally

DEFAULT_RETENTION_DAYS = 7.0
PRUNE_EVERY_SECONDS = 60.0

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS parity_windows (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        samples BIGINT NOT NULL, raw_clean BIGINT NOT NULL, noise_samples BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start))""",
    "CREATE INDEX IF NOT EXISTS parity_windows_start ON parity_windows (window_start)",
    """CREATE TABLE IF NOT EXISTS parity_fields (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        field TEXT NOT NULL, kind TEXT NOT NULL, raw BIGINT NOT NULL, noise BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start, field))""",
    """CREATE TABLE IF NOT EXISTS parity_signatures (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        signature TEXT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start, signature))""",
    """CREATE TABLE IF NOT EXISTS parity_statuses (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        primary_status INTEGER NOT NULL, candidate_status INTEGER NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start, primary_status, candidate_status))""",
    """CREATE TABLE IF NOT EXISTS parity_latency (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        side TEXT NOT NULL, bucket INTEGER NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start, side, bucket))""",
    """CREATE TABLE IF NOT EXISTS parity_examples (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, field TEXT NOT NULL, slot INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL, pair TEXT NOT NULL,
        PRIMARY KEY (route, endpoint, field, slot))""",
    """CREATE TABLE IF NOT EXISTS parity_data (
        route TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, result TEXT NOT NULL,
        PRIMARY KEY (route, at))""",
)
WINDOW_TABLES = (
    "parity_windows",
    "parity_fields",
    "parity_signatures",
    "parity_statuses",
    "parity_latency",
)


def _add(table: str, keys: str, values: str, labels: str = "") -> str:
    """An upsert adding `values` columns onto an existing row with the same `keys`.

    `labels` are columns written with a new row but not part of its key.
    """
    cols = ", ".join(c for c in (keys, labels, values) if c)
    marks = ", ".join("?" for _ in cols.split(","))
    sets = ", ".join(
        f"{c.strip()} = {table}.{c.strip()} + excluded.{c.strip()}" for c in values.split(",")
    )
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    )


WINDOW_KEY = "route, endpoint, window_start"
UPSERTS = {
    "windows": _add("parity_windows", WINDOW_KEY, "samples, raw_clean, noise_samples"),
    "signatures": _add("parity_signatures", f"{WINDOW_KEY}, signature", "count"),
    "statuses": _add("parity_statuses", f"{WINDOW_KEY}, primary_status, candidate_status", "count"),
    "latency": _add("parity_latency", f"{WINDOW_KEY}, side, bucket", "count"),
    "fields": _add("parity_fields", f"{WINDOW_KEY}, field", "raw, noise", labels="kind"),
}


class StoreError(Exception):
    """The parity store cannot be opened or written; the message says which and where."""


@dataclass(frozen=True)
class StoredCounts:
    """Summed rows of one route since a time, as the summary reads them."""

    windows: list[tuple[str, int, int, int]]  # endpoint, samples, raw_clean, noise_samples
    fields: list[tuple[str, str, str, int, int]]  # endpoint, field, kind, raw, noise
    signatures: list[tuple[str, str, int]]
    statuses: list[tuple[str, int, int, int]]
    latency: list[tuple[str, str, int, int]]  # endpoint, side, bucket, count


class _Transaction:
    """One locked transaction on the store's connection, with `?` placeholders on both drivers."""

    def __init__(self, store: ParityStore) -> None:
        self.store = store

    def __enter__(self) -> _Transaction:
        self.store._lock.acquire()
        self.cur = self.store._conn.cursor()
        return self

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.cur.execute(self.store._sql(sql), params)
        return self.cur

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.cur.executemany(self.store._sql(sql), rows)

    def __exit__(self, kind: object, *rest: object) -> None:
        try:
            if kind is None:
                self.store._conn.commit()
            else:
                self.store._conn.rollback()
        finally:
            self.cur.close()
            self.store._lock.release()


class ParityStore:
    """Comparison counts over time; one instance per process, safe across threads."""

    def __init__(self, location: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.location = location
        self.retention_seconds = retention_days * 86400
        self._lock = threading.Lock()
        self._pruned = 0.0
        self.postgres = location.startswith(("postgres://", "postgresql://"))
        try:
            if self.postgres:
                import psycopg

                self._conn: Any = psycopg.connect(location, connect_timeout=10)
            else:
                Path(location).parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(location, timeout=30, check_same_thread=False)
                self._conn.execute("PRAGMA journal_mode=WAL")
        except Exception as error:  # psycopg.Error and sqlite3.Error alike
            raise StoreError(f"cannot open parity store {location}: {error}".strip()) from error
        with self._transaction() as cur:
            if self.postgres:  # CREATE TABLE IF NOT EXISTS races between processes on PG
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('strangler_parity_schema'))")
            for statement in SCHEMA:
                cur.execute(statement)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def write(self, tally: Tally, now: float | None = None) -> None:
        """Add a tally's counts and examples in one transaction."""
        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in UPSERTS}
        for (route, endpoint, window), c in tally.windows.items():
            key = (route, endpoint, window)
            rows["windows"].append((*key, c.samples, c.raw_clean, c.noise_samples))
            for path in c.raw.keys() | c.noise.keys():
                kind = c.kinds.get(path, "value")
                rows["fields"].append((*key, path, kind, c.raw[path], c.noise[path]))
            rows["signatures"] += [(*key, s, n) for s, n in c.signatures.items()]
            rows["statuses"] += [(*key, p, q, n) for (p, q), n in c.statuses.items()]
            rows["latency"] += [(*key, side, b, n) for (side, b), n in c.latency.items()]
        with self._transaction() as tx:
            for name, sql in UPSERTS.items():
                tx.executemany(sql, rows[name])
            for (route, endpoint, path), (at, pair) in tally.examples.items():
                self._keep_example(tx, route, endpoint, path, at, pair)
        now = time.time() if now is None else now
        if now - self._pruned >= PRUNE_EVERY_SECONDS:
            self.prune(now)

    def _keep_example(
        self,
        tx: _Transaction,
        route: str,
        endpoint: str,
        path: str,
        at: float,
        pair: dict[str, Any],
    ) -> None:
        """Keep the newest EXAMPLES_PER_FIELD pairs of a field: fill free slots, then the oldest."""
        where = "route = ? AND endpoint = ? AND field = ?"
        slots = tx.execute(
            f"SELECT slot FROM parity_examples WHERE {where} ORDER BY at", (route, endpoint, path)
        ).fetchall()
        used = [s for (s,) in slots]
        free = [s for s in range(EXAMPLES_PER_FIELD) if s not in used]
        slot = free[0] if free else used[0]
        tx.execute(f"DELETE FROM parity_examples WHERE {where} AND slot = ?",
                   (route, endpoint, path, slot))  # fmt: skip
        tx.execute(
            "INSERT INTO parity_examples (route, endpoint, field, slot, at, pair) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (route, endpoint, path, slot, at, json.dumps(pair)),
        )

    def prune(self, now: float | None = None) -> int:
        """Delete windows and examples older than the retention; returns rows deleted."""
        now = time.time() if now is None else now
        cutoff = now - self.retention_seconds
        deleted = 0
        with self._transaction() as tx:
            for table in WINDOW_TABLES:
                deleted += tx.execute(
                    f"DELETE FROM {table} WHERE window_start < ?", (int(cutoff),)
                ).rowcount
            deleted += tx.execute("DELETE FROM parity_examples WHERE at < ?", (cutoff,)).rowcount
            deleted += tx.execute("DELETE FROM parity_data WHERE at < ?", (cutoff,)).rowcount
        self._pruned = now
        return deleted

    def record_data(self, route: str, result: dict[str, Any], at: float | None = None) -> None:
        """Keep a CDC reconcile result (`strangler cdc reconcile --json`) for a route."""
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO parity_data (route, at, result) VALUES (?, ?, ?)",
                (route, time.time() if at is None else at, json.dumps(result)),
            )

    def latest_data(self, route: str) -> tuple[float, dict[str, Any]] | None:
        with self._transaction() as tx:
            row = tx.execute(
                "SELECT at, result FROM parity_data WHERE route = ? ORDER BY at DESC LIMIT 1",
                (route,),
            ).fetchone()
        return (float(row[0]), json.loads(row[1])) if row else None

    def routes(self, since: float = 0.0) -> list[str]:
        with self._transaction() as tx:
            rows = tx.execute(
                "SELECT DISTINCT route FROM parity_windows WHERE window_start >= ? ORDER BY route",
                (_window(since),),
            ).fetchall()
        return [r for (r,) in rows]

    def counts(self, route: str, since: float = 0.0) -> StoredCounts:
        """Every count of `route` in windows starting at or after `since`'s window."""
        args = (route, _window(since))
        where = "WHERE route = ? AND window_start >= ?"
        with self._transaction() as tx:

            def q(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in tx.execute(sql, args).fetchall()]

            return StoredCounts(
                windows=q(
                    "SELECT endpoint, SUM(samples), SUM(raw_clean), SUM(noise_samples) "
                    f"FROM parity_windows {where} GROUP BY endpoint ORDER BY endpoint"
                ),
                fields=q(
                    "SELECT endpoint, field, MIN(kind), SUM(raw), SUM(noise) "
                    f"FROM parity_fields {where} GROUP BY endpoint, field"
                ),
                signatures=q(
                    "SELECT endpoint, signature, SUM(count) "
                    f"FROM parity_signatures {where} GROUP BY endpoint, signature"
                ),
                statuses=q(
                    "SELECT endpoint, primary_status, candidate_status, SUM(count) "
                    f"FROM parity_statuses {where} "
                    "GROUP BY endpoint, primary_status, candidate_status"
                ),
                latency=q(
                    "SELECT endpoint, side, bucket, SUM(count) "
                    f"FROM parity_latency {where} GROUP BY endpoint, side, bucket"
                ),
            )

    def example(self, route: str, endpoint: str, path: str) -> dict[str, Any] | None:
        """The newest example pair kept for a field, or None."""
        with self._transaction() as tx:
            row = tx.execute(
                "SELECT pair FROM parity_examples WHERE route = ? AND endpoint = ? "
                "AND field = ? ORDER BY at DESC LIMIT 1",
                (route, endpoint, path),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _window(since: float) -> int:
    return int(since // WINDOW_SECONDS * WINDOW_SECONDS)


def open_store(location: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> ParityStore:
    """A parity store at a SQLite path or a postgresql:// URL."""
    return ParityStore(location, retention_days)
