"""Where comparison counts live: SQLite (embedded default) or PostgreSQL, with the same SQL.

Counts are kept per route, endpoint and second, folded into minutes after an hour; up to
EXAMPLES_PER_FIELD example pairs per differing field; windows older than the retention are
deleted as new ones are written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from strangler.parity.tally import EXAMPLES_PER_FIELD, WINDOW_SECONDS, Tally
from strangler.sqlite import use_wal

DEFAULT_RETENTION_DAYS = 7.0
PRUNE_EVERY_SECONDS = 60.0
LOCK_WAIT_S = 30.0  # how long a statement waits for a lock another session holds
log = logging.getLogger("strangler.parity")
# Counts are written per second, so a gate's window starts where it began; after an hour
# they are folded into minute windows (a report over days reads 60 times fewer rows).
FINE_SECONDS = 3600
ROLLUP_SECONDS = 60

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS parity_windows (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        samples BIGINT NOT NULL, raw_clean BIGINT NOT NULL, noise_samples BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start))""",
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
    """CREATE TABLE IF NOT EXISTS parity_skipped (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, window_start BIGINT NOT NULL,
        reason TEXT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (route, endpoint, window_start, reason))""",
    *(
        f"CREATE INDEX IF NOT EXISTS {t}_start ON {t} (window_start)"
        for t in (
            "parity_windows",
            "parity_fields",
            "parity_signatures",
            "parity_statuses",
            "parity_latency",
            "parity_skipped",
        )
    ),
    """CREATE TABLE IF NOT EXISTS parity_examples (
        route TEXT NOT NULL, endpoint TEXT NOT NULL, field TEXT NOT NULL, slot INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL, pair TEXT NOT NULL,
        PRIMARY KEY (route, endpoint, field, slot))""",
    """CREATE TABLE IF NOT EXISTS parity_data (
        route TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, result TEXT NOT NULL,
        PRIMARY KEY (route, at))""",
)


def _schema_columns() -> dict[str, tuple[str, ...]]:
    """Each table of SCHEMA and its columns, read from SCHEMA itself (in memory)."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in SCHEMA:
            conn.execute(statement)
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: tuple(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        conn.close()


SCHEMA_COLUMNS = _schema_columns()


@dataclass(frozen=True)
class Counted:
    """A table of counts keyed by route, endpoint, window and `keys`; `values` add up, `labels`
    are written with a new row but are not part of its key."""

    table: str
    keys: str
    values: str
    labels: str = ""

    def _sets(self) -> str:
        t = self.table
        return ", ".join(f"{c} = {t}.{c} + excluded.{c}" for c in _names(self.values))

    def _key(self) -> str:
        return ", ".join(c for c in (WINDOW_KEY, self.keys) if c)

    def upsert(self) -> str:
        """Add one row's values onto the row with the same key (or insert it)."""
        cols = ", ".join(c for c in (self._key(), self.labels, self.values) if c)
        marks = ", ".join("?" for _ in _names(cols))
        return (
            f"INSERT INTO {self.table} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({self._key()}) DO UPDATE SET {self._sets()}"
        )

    def rollup(self) -> str:
        """Fold the second windows before `?` into their minute windows (then delete them)."""
        minute = f"window_start - window_start % {ROLLUP_SECONDS}"
        keys = ", ".join(c for c in ("route, endpoint", minute, self.keys) if c)
        labels = ", ".join(f"MIN({c})" for c in _names(self.labels))
        sums = ", ".join(f"SUM({c})" for c in _names(self.values))
        cols = ", ".join(c for c in (self._key(), self.labels, self.values) if c)
        picked = ", ".join(c for c in (keys, labels, sums) if c)
        return (
            f"INSERT INTO {self.table} ({cols}) SELECT {picked} FROM {self.table} "
            f"WHERE {FINE_WINDOWS} GROUP BY {keys} "
            f"ON CONFLICT ({self._key()}) DO UPDATE SET {self._sets()}"
        )


def _names(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",") if c.strip()]


WINDOW_KEY = "route, endpoint, window_start"
# Second windows older than `?` that are not yet minute windows.
FINE_WINDOWS = f"window_start < ? AND window_start % {ROLLUP_SECONDS} <> 0"
COUNTED = {
    "windows": Counted("parity_windows", "", "samples, raw_clean, noise_samples"),
    "signatures": Counted("parity_signatures", "signature", "count"),
    "statuses": Counted("parity_statuses", "primary_status, candidate_status", "count"),
    "latency": Counted("parity_latency", "side, bucket", "count"),
    "skipped": Counted("parity_skipped", "reason", "count"),
    "fields": Counted("parity_fields", "field", "raw, noise", labels="kind"),
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
    skipped: list[tuple[str, str, int]] = field(default_factory=list)  # endpoint, reason, count


class _Transaction:
    """One locked transaction on the store's connection, with `?` placeholders on both drivers.

    A database error comes out as StoreError naming the store, and the lock is released
    whatever failed: a lost PostgreSQL connection must not leave every later batch (and
    `close`) waiting for it forever."""

    def __init__(self, store: ParityStore) -> None:
        self.store = store

    def __enter__(self) -> _Transaction:
        self.store._lock.acquire()
        try:
            self.cur = self.store._cursor()
        except Exception as error:
            self.store._lock.release()
            raise self.store._failed(error) from error
        self.fresh = True  # no statement of this transaction has reached the server yet
        return self

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._run(lambda cur: cur.execute(self.store._sql(sql), params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._run(lambda cur: cur.executemany(self.store._sql(sql), rows))

    def _run(self, statement: Callable[[Any], object]) -> Any:
        """Run one statement. When the transaction's first one finds the PostgreSQL connection
        lost (the server restarted, an idle connection cut), nothing of the transaction was
        done, so it runs once more on a new connection; after that, a retry could add twice."""
        try:
            statement(self.cur)
        except Exception:
            if not (self.fresh and self.store._lost()):
                raise
            self.cur.close()
            self.cur = self.store._cursor()
            statement(self.cur)
        self.fresh = False
        return self.cur

    def __exit__(self, kind: object, error: BaseException | None, *rest: object) -> None:
        try:
            if kind is None:
                self.store._conn.commit()
            else:
                self.store._conn.rollback()
        except Exception as failure:
            if error is None:  # the commit failed: nothing was written
                raise self.store._failed(failure) from failure
            # A rollback on a lost connection fails too; the first error says what happened.
        finally:
            self.cur.close()
            self.store._lock.release()
        if isinstance(error, self.store._errors):
            raise self.store._failed(error) from error


class ParityStore:
    """Comparison counts over time; one instance per process, safe across threads."""

    def __init__(self, location: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.location = location
        self.retention_seconds = retention_days * 86400
        self._lock = threading.Lock()
        self._pruned = 0.0
        self.postgres = location.startswith(("postgres://", "postgresql://"))
        self.shown = _without_password(location)  # what messages name
        self._conn: Any = None
        self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        try:
            if self.postgres:
                import psycopg

                self._errors = (psycopg.Error,)
            self._conn = self._connect()
            # Before anything is written (WAL mode rewrites a SQLite file's header): a file or
            # database holding something else is left as it was.
            with self._transaction() as tx:
                self._check_shape(tx)
            if not self.postgres:
                use_wal(self._conn, timeout=LOCK_WAIT_S)
        except Exception as error:  # psycopg.Error and sqlite3.Error alike
            if self._conn is not None:
                self._conn.close()
            if isinstance(error, StoreError) and error.__cause__ is None:
                raise  # a store holding something else: the message says what
            cause = _database_error(error)
            raise StoreError(f"cannot open parity store {self.shown}: {cause}".strip()) from cause
        try:
            with self._transaction() as cur:
                if self.postgres:  # CREATE TABLE IF NOT EXISTS races between processes on PG
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext('strangler_parity_schema'))")
                for statement in SCHEMA:
                    cur.execute(statement)
        except Exception as error:  # a read-only file, a PostgreSQL role without CREATE
            self._conn.close()
            cause = _database_error(error)
            raise StoreError(f"cannot set up parity store {self.shown}: {cause}".strip()) from cause

    def _connect(self) -> Any:
        """A new connection to the store's database."""
        if self.postgres:
            import psycopg

            # A lock held elsewhere (a migration, a long VACUUM FULL) is waited for as long as
            # SQLite's busy timeout, not forever: a mirror's hand-off fills meanwhile, and
            # `parity report` would hang.
            conn = psycopg.connect(self.location, connect_timeout=10)
            conn.execute(f"SET lock_timeout = {int(LOCK_WAIT_S * 1000)}")
            conn.commit()
            return conn
        Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.location, timeout=LOCK_WAIT_S, check_same_thread=False)

    def _lost(self) -> bool:
        """Whether the PostgreSQL connection is gone (a SQLite file's never is)."""
        return self.postgres and bool(self._conn.closed)

    def _cursor(self) -> Any:
        """A cursor, on a new connection in place of a lost one."""
        if self._lost():
            self._conn.close()
            self._conn = self._connect()
        return self._conn.cursor()

    def _failed(self, error: BaseException) -> StoreError:
        return StoreError(f"parity store {self.shown}: {error}".strip())

    def _check_shape(self, tx: _Transaction) -> None:
        """StoreError naming the file and what is wrong when it holds something else: a table
        of ours with other columns (the queries would fail on it), or (SQLite) a database of
        other tables only, which `report` would otherwise fill with empty parity tables."""
        if self.postgres:  # a shared PostgreSQL database may well have tables of its own
            rows = tx.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            ).fetchall()
            tables: dict[str, set[str]] = {}
            for table, column in rows:
                tables.setdefault(str(table), set()).add(str(column))
        else:
            names = [
                str(t)
                for (t,) in tx.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite%' ORDER BY name"
                ).fetchall()
            ]
            tables = {
                t: {str(r[1]) for r in tx.execute(f'PRAGMA table_info("{t}")').fetchall()}
                for t in names
                if t in SCHEMA_COLUMNS
            }
            if names and not tables:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise StoreError(
                    f"{self.shown} is not a parity store: a SQLite database of other "
                    f"tables ({shown}), none of the parity store's (parity_windows, ...); "
                    "pass --store a parity store's file, or a new one"
                )
        for table, expected in SCHEMA_COLUMNS.items():
            found = tables.get(table)
            if found is not None and found != set(expected):
                listed = ", ".join(sorted(found)) or "none"
                raise StoreError(
                    f"{self.shown} is not a parity store: its table {table} has columns "
                    f"({listed}), a parity store's has ({', '.join(expected)})"
                )

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if self.postgres else sql

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def write(self, tally: Tally, now: float | None = None) -> None:
        """Add a tally's counts and examples in one transaction."""
        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COUNTED}
        for (route, endpoint, window), c in tally.windows.items():
            key = (route, endpoint, window)
            rows["windows"].append((*key, c.samples, c.raw_clean, c.noise_samples))
            for path in c.raw.keys() | c.noise.keys():
                kind = c.kinds.get(path, "value")
                rows["fields"].append((*key, path, kind, c.raw[path], c.noise[path]))
            rows["signatures"] += [(*key, s, n) for s, n in c.signatures.items()]
            rows["statuses"] += [(*key, p, q, n) for (p, q), n in c.statuses.items()]
            rows["latency"] += [(*key, side, b, n) for (side, b), n in c.latency.items()]
            rows["skipped"] += [(*key, r, n) for r, n in c.skipped.items()]
        with self._transaction() as tx:
            # Rows in key order: two workers adding to the same rows then lock them in the
            # same order, so PostgreSQL never has to break a deadlock by failing a batch.
            for name, counted in COUNTED.items():
                tx.executemany(counted.upsert(), sorted(rows[name]))
            for (route, endpoint, path), (at, pair) in sorted(tally.examples.items()):
                self._keep_example(tx, route, endpoint, path, at, pair)
        now = time.time() if now is None else now
        if now - self._pruned >= PRUNE_EVERY_SECONDS:
            try:
                self.prune(now)
            except StoreError as error:  # the tally is stored: its pairs are not lost
                log.warning("parity store %s: not pruned (tried again next write): %s",
                            self.shown, error)  # fmt: skip

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
        # An upsert, not delete-then-insert: two workers picking the same slot at once must
        # not fail a batch on the primary key (one of the two pairs wins, both are examples).
        tx.execute(
            "INSERT INTO parity_examples (route, endpoint, field, slot, at, pair) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (route, endpoint, field, slot) "
            "DO UPDATE SET at = excluded.at, pair = excluded.pair",
            (route, endpoint, path, slot, at, json.dumps(pair)),
        )

    def prune(self, now: float | None = None) -> int:
        """Delete windows and examples older than the retention, and fold second windows older
        than FINE_SECONDS into minute windows; returns rows deleted."""
        now = time.time() if now is None else now
        cutoff = now - self.retention_seconds
        fine = int(now - FINE_SECONDS)
        deleted = 0
        with self._transaction() as tx:
            if self.postgres:  # two workers folding the same seconds at once would add twice
                tx.execute("SELECT pg_advisory_xact_lock(hashtext('strangler_parity_prune'))")
            for counted in COUNTED.values():
                tx.execute(counted.rollup(), (fine,))
                tx.execute(f"DELETE FROM {counted.table} WHERE {FINE_WINDOWS}", (fine,))
                deleted += tx.execute(
                    f"DELETE FROM {counted.table} WHERE window_start < ?", (int(cutoff),)
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
                (window_start(since),),
            ).fetchall()
        return [r for (r,) in rows]

    def counts(self, route: str, since: float = 0.0) -> StoredCounts:
        """Every count of `route` in the windows starting at or after `since`."""
        args = (route, window_start(since))
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
                skipped=q(
                    "SELECT endpoint, reason, SUM(count) "
                    f"FROM parity_skipped {where} GROUP BY endpoint, reason"
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


def _database_error(error: BaseException) -> BaseException:
    """The driver's own error behind a StoreError a transaction raised from it, else `error`."""
    return error.__cause__ if isinstance(error, StoreError) and error.__cause__ else error


def _without_password(location: str) -> str:
    """A store's location as messages show it: a postgresql:// URL without its password."""
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
    except ValueError:  # an unclosed IPv6 bracket: psycopg says what is wrong with it
        return location
    if parts.password is None:
        return location
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def window_start(since: float) -> int:
    """The first whole window starting at or after `since`: counts are kept per window, and
    the partial one before would bring in comparisons from before `since`."""
    return int(-(-since // WINDOW_SECONDS) * WINDOW_SECONDS)


def open_store(location: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> ParityStore:
    """A parity store at a SQLite path or a postgresql:// URL."""
    return ParityStore(location, retention_days)
