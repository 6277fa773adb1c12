"""The relay: publishes outbox rows to Kafka, one topic per table, keyed by primary key.

A row is marked published only after the broker acknowledged it. On PostgreSQL a batch is
claimed with `FOR UPDATE SKIP LOCKED` plus a transaction-scoped advisory lock per key shard,
so several relays share the work without publishing a row twice and without two relays ever
holding events of the same key at once (which would break per-key order). If a relay dies
mid-publish its transaction rolls back and the rows are published again (at least once).
On SQLite run a single relay.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry, Counter, Gauge

from strangler.cdc import kafka
from strangler.cdc.conf import CdcSettings
from strangler.cdc.envelope import OutboxRow, encode
from strangler.cdc.models import AcknowledgedOffset
from strangler.cdc.running import Stopper, backoff
from strangler.cdc.triggers import now_ms_sql

log = logging.getLogger("strangler.cdc.relay")

ADVISORY_LOCK_CLASS = 73_001
KEY_SHARDS = 64
OUTBOX_OF_TABLE = "SELECT ts_ms FROM strangler_cdc_outbox WHERE table_name = %s AND"
ACKED = "kafka_offset IS NOT NULL"
COLUMNS = "id, app_label, table_name, pk, op, txid, ts_ms, before, after, schema_version"
# A parked row (too big for the broker) holds its key's later rows back: per-key order.
NOT_HELD = """NOT EXISTS (
        SELECT 1 FROM strangler_cdc_outbox held
        WHERE held.parked IS NOT NULL AND held.published_at IS NULL
          AND held.table_name = strangler_cdc_outbox.table_name
          AND held.pk = strangler_cdc_outbox.pk)"""
PG_CLAIM = f"""
    SELECT id, app_label, table_name, pk, op, txid, ts_ms, before::text, after::text,
           schema_version
    FROM strangler_cdc_outbox
    WHERE published_at IS NULL AND {NOT_HELD} AND NOT (table_name = ANY(%s))
      AND pg_try_advisory_xact_lock({ADVISORY_LOCK_CLASS},
                                    hashtext(table_name || ':' || pk) & {KEY_SHARDS - 1})
    ORDER BY id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
SQLITE_CLAIM = (
    f"SELECT {COLUMNS} FROM strangler_cdc_outbox WHERE published_at IS NULL AND {NOT_HELD} "
    "AND table_name NOT IN ({held}) ORDER BY id LIMIT %s"
)


class Published(NamedTuple):
    """An outbox row and where the broker acknowledged it."""

    row: OutboxRow
    partition: int
    offset: int


class PublishError(Exception):
    """The broker did not acknowledge a batch; its rows stay unpublished."""


@dataclass
class RelayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.backlog = Gauge(
            "strangler_cdc_outbox_backlog", "Unpublished outbox rows", registry=self.registry
        )
        self.oldest_age = Gauge(
            "strangler_cdc_outbox_oldest_unpublished_seconds",
            "Age of the oldest unpublished outbox row",
            registry=self.registry,
        )
        self.published = Counter(
            "strangler_cdc_relay_published", "Outbox rows published", registry=self.registry
        )
        self.errors = Counter(
            "strangler_cdc_relay_errors", "Failed publish attempts", registry=self.registry
        )
        self.partition_mismatch = Gauge(
            "strangler_cdc_relay_topic_partition_mismatch",
            "1 while a topic's partition count differs from the plan (publishing refused)",
            ["topic"],
            registry=self.registry,
        )
        self.parked = Gauge(
            "strangler_cdc_outbox_parked",
            "Outbox rows too big for the broker, parked with their keys' later rows",
            registry=self.registry,
        )
        self.log_resets = Counter(
            "strangler_cdc_relay_log_resets",
            "Acknowledged offsets that went backwards (the broker lost its log)",
            registry=self.registry,
        )


@dataclass(frozen=True)
class Lag:
    backlog: int
    oldest_age_s: float  # by the database's clock; 0 with no row; below 0 if it stepped back
    parked: int = 0  # rows too big for the broker, holding their keys back


def _unapplied_rows(
    table: str, seq: int, offsets: Mapping[str, int] | None
) -> tuple[str, list[object]]:
    """A query of the ts_ms of `table`'s outbox rows not applied by a receiver that applied
    through `seq` and, per partition, through `offsets` (see `Relay.unapplied`); each branch
    reads one index range."""
    if offsets is None:
        return f"{OUTBOX_OF_TABLE} id > %s", [table, seq]
    applied = dict(sorted((int(p), offset) for p, offset in offsets.items()))
    # published by a relay that kept no offsets
    legacy = "published_at IS NOT NULL AND kafka_offset IS NULL AND id > %s"
    branches: list[tuple[str, list[object]]] = [("published_at IS NULL", []), (legacy, [seq])]
    previous = -1
    for partition, offset in applied.items():
        if partition > previous + 1:  # partitions the receiver applied nothing from yet
            between: list[object] = [previous, partition]
            branches.append((f"{ACKED} AND kafka_partition > %s AND kafka_partition < %s", between))
        branches.append(("kafka_partition = %s AND kafka_offset > %s", [partition, offset]))
        previous = partition
    branches.append((f"{ACKED} AND kafka_partition > %s", [previous]))
    query = " UNION ALL ".join(f"{OUTBOX_OF_TABLE} {where}" for where, _ in branches)
    return query, [param for _, params in branches for param in [table, *params]]


def _age_s(age_ms: float | None) -> float:
    """An age the database computed in ms (None: no row) in seconds."""
    return float(age_ms) / 1000 if age_ms is not None else 0.0


class Relay:
    """Moves outbox rows of one database to Kafka."""

    def __init__(
        self,
        settings: CdcSettings,
        using: str = "default",
        metrics: RelayMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.using = using
        self.metrics = metrics or RelayMetrics()
        self._producer: KafkaProducer | None = None
        self._acked: dict[tuple[str, int], int] = {}
        self._recalled: set[str] = set()  # topics whose acknowledged offsets were read
        # Tables whose topic has the wrong partition count: their rows wait unpublished,
        # every other table flows. Checked again after each housekeeping interval.
        self.held_tables: dict[str, str] = {}
        # Topics created (or found) with the planned partitions since the broker last failed:
        # any other is created before its first row is sent, never left to the broker's
        # auto-creation with its own default partition count.
        self.ensured: set[str] = set()

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.using]

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = kafka.producer(
                self.settings.bootstrap_servers, self.settings.client_options
            )
        return self._producer

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except KafkaError:
                log.warning("relay: producer did not close cleanly")
            self._producer = None

    def check_partitions(self, producer: KafkaProducer, topics: set[str]) -> dict[str, list[int]]:
        """Each topic's partitions, sorted; a topic whose partition count is not the plan's is
        left out (publishing into it would move keys between partitions and lose their order)
        and its table held (see `held_tables`), with an error that says what to do."""
        found: dict[str, list[int]] = {}
        for topic in sorted(topics):
            partitions = sorted(producer.partitions_for(topic) or ())
            wrong = len(partitions) != self.settings.partitions
            self.metrics.partition_mismatch.labels(topic).set(int(wrong))
            if not wrong:
                found[topic] = partitions
                continue
            table = topic.removeprefix(self.settings.topic_prefix)
            self.held_tables[table] = (
                f"topic {topic} has {len(partitions)} partitions but STRANGLER_CDC['topics'] "
                f"plans {self.settings.partitions}: keys would move between partitions and lose "
                f"their order, so {table}'s rows are not published (other tables flow). "
                "Recreate the topic with the planned count (then snapshot its table) or change "
                "the plan."
            )
            log.error("relay: %s", self.held_tables[table])
        return found

    def _recall_offsets(self, topics: set[str]) -> None:
        """Before a topic's first batch in this process: the last offsets acknowledged in its
        partitions (by any relay, as they marked them), so an offset going backwards is seen by
        a relay started after the broker lost its log too. Read before sending: another
        relay's later acknowledgements are above it."""
        new = topics - self._recalled
        if not new:
            return
        for acked in AcknowledgedOffset.objects.using(self.using).filter(topic__in=new):
            self._acked[(acked.topic, acked.partition)] = acked.offset
        self._recalled |= new

    def _watch_offsets(self, acked: list[tuple[str, int, int]]) -> None:
        """Say loudly when the broker acknowledges an offset at or below one it acknowledged
        before: it lost its log, and what it held may never reach consumers."""
        for topic, partition, offset in acked:
            before = self._acked.get((topic, partition))
            if before is not None and offset <= before:
                self.metrics.log_resets.inc()
                log.error(
                    "relay: %s[%d] acknowledged offset %d after %d: the broker lost its log; "
                    "events published before may never be consumed. Run `strangler cdc "
                    "reconcile --repair` in the receiving projects.",
                    topic,
                    partition,
                    offset,
                    before,
                )
            self._acked[(topic, partition)] = offset

    def _send(self, rows: list[OutboxRow]) -> tuple[list[Published], dict[int, str]]:
        """Publish `rows`; returns the rows acknowledged and {row id: why it is parked}.

        A row bigger than the producer's `max_request_size` is parked, and its key's later
        rows in the batch are left unpublished behind it; every other key flows.
        """
        try:
            producer = self.producer()
            topics = {self.settings.topic(r.table_name) for r in rows}
            if topics - self.ensured:
                self.create_topics(topics - self.ensured)
            partitions = self.check_partitions(producer, topics)
            self._recall_offsets(set(partitions))
            rows = [r for r in rows if r.table_name not in self.held_tables]
            # Picked here as the producer would: it sorts and lists a topic's partitions for
            # every message (a tenth of the relay's CPU).
            keyed = kafka.keyed_partitions(producer)
            futures, sent, parked = [], [], {}
            held: set[tuple[str, str]] = set()
            for row in rows:
                if (row.table_name, row.pk) in held:
                    continue
                value, key = encode(row), row.pk.encode()
                topic = self.settings.topic(row.table_name)
                partition = kafka.partition_of(key, partitions[topic]) if keyed else None
                try:
                    futures.append(producer.send(topic, key=key, value=value, partition=partition))
                except MessageSizeTooLargeError:
                    held.add((row.table_name, row.pk))
                    parked[row.id] = self._too_large(row, len(value), producer)
                    continue
                except ValueError as error:  # metadata changed since the check: no such partition
                    raise PublishError(str(error)) from error
                sent.append(row)
            acked = kafka.await_delivery(producer, futures)
            self._watch_offsets([(m.topic, m.partition, m.offset) for m in acked])
            published = [
                Published(r, m.partition, m.offset) for r, m in zip(sent, acked, strict=True)
            ]
            return published, parked
        except KafkaError as error:
            # A producer that failed may hold half-sent batches; start clean next time.
            kafka.discard(self._producer)
            self._producer = None
            raise PublishError(str(error)) from error

    def _too_large(self, row: OutboxRow, size: int, producer: KafkaProducer) -> str:
        limit = producer.config["max_request_size"]
        reason = (
            f"{size} bytes, over the producer's max_request_size of {limit}: raise "
            "STRANGLER_CDC['kafka']['max_request_size'] (and the broker's message.max.bytes or "
            "the topic's max.message.bytes), then restart the relay"
        )
        log.error(
            "relay: outbox row %d (%s key %s) parked, its key held behind it: %s",
            row.id,
            row.table_name,
            row.pk,
            reason,
        )
        return reason

    def _mark(self, cursor: CursorWrapper, sent: list[Published], parked: dict[int, str]) -> None:
        """Mark `sent` published, with the partition and offset each was acknowledged at."""
        if sent and self.connection.vendor == "postgresql":
            # Text parameters: psycopg builds an array parameter in Python, a value at a time
            # (2 ms of client CPU for 2,000 ids, 0.4 ms joined), and would parse a statement
            # of 2,000 placeholders.
            cursor.execute(
                "UPDATE strangler_cdc_outbox SET published_at = now(), "
                "kafka_partition = acked.kafka_partition, kafka_offset = acked.kafka_offset "
                "FROM unnest(string_to_array(%s, ',')::bigint[], "
                "string_to_array(%s, ',')::int[], string_to_array(%s, ',')::bigint[]) "
                "AS acked(id, kafka_partition, kafka_offset) "
                "WHERE strangler_cdc_outbox.id = acked.id",
                [
                    ",".join(str(p.row.id) for p in sent),
                    ",".join(str(p.partition) for p in sent),
                    ",".join(str(p.offset) for p in sent),
                ],
            )
        elif sent:
            cursor.executemany(
                "UPDATE strangler_cdc_outbox SET published_at = CURRENT_TIMESTAMP, "
                "kafka_partition = %s, kafka_offset = %s WHERE id = %s",
                [(p.partition, p.offset, p.row.id) for p in sent],
            )
        for row_id, reason in parked.items():
            cursor.execute(
                "UPDATE strangler_cdc_outbox SET parked = %s WHERE id = %s", [reason, row_id]
            )
        last = {(self.settings.topic(p.row.table_name), p.partition): p.offset for p in sent}
        AcknowledgedOffset.objects.using(self.using).bulk_create(
            [AcknowledgedOffset(topic=t, partition=p, offset=o) for (t, p), o in last.items()],
            update_conflicts=True,
            unique_fields=["topic", "partition"],
            update_fields=["offset", "updated_at"],
        )

    def claim(self, cursor: CursorWrapper, limit: int) -> list[OutboxRow]:
        """Up to `limit` unpublished rows, the oldest first, none of a held table; on
        PostgreSQL locked until the transaction ends (with their key shards: see PG_CLAIM)."""
        held = list(self.held_tables)
        if self.connection.vendor != "postgresql":
            cursor.execute(SQLITE_CLAIM.format(held=",".join("%s" for _ in held)), [*held, limit])
            return [OutboxRow(*r) for r in cursor.fetchall()]
        # Walk the unpublished-rows index in id order and stop at the limit. The planner may
        # prefer sorting the whole backlog (its estimate of the shard-lock filter is a guess),
        # which runs that filter on every unpublished row: this relay then holds every shard
        # and other relays find nothing, and a 10,000-row backlog costs 40 ms per batch.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(PG_CLAIM, [held, limit])
        return [OutboxRow(*r) for r in cursor.fetchall()]

    def publish_batch(self) -> int:
        """Publish one batch; returns how many rows it published."""
        limit = self.settings.relay.batch_size
        if self.connection.vendor == "postgresql":
            with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
                rows = self.claim(cursor, limit)
                sent, parked = self._send(rows) if rows else ([], {})
                self._mark(cursor, sent, parked)
        else:
            with self.connection.cursor() as cursor:
                rows = self.claim(cursor, limit)
            sent, parked = self._send(rows) if rows else ([], {})
            with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
                self._mark(cursor, sent, parked)
        self.metrics.published.inc(len(sent))
        if sent:
            log.info("relay: published %d outbox rows up to id %d", len(sent), sent[-1].row.id)
        return len(sent)

    def unpark(self) -> int:
        """Give parked rows another chance (at start: the limits may have been raised)."""
        with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
            cursor.execute(
                "UPDATE strangler_cdc_outbox SET parked = NULL "
                "WHERE parked IS NOT NULL AND published_at IS NULL"
            )
            return cursor.rowcount

    def drain(self, max_batches: int = 1000) -> int:
        """Publish until the outbox is empty (or max_batches); the Celery task's body."""
        total = 0
        for _ in range(max_batches):
            published = self.publish_batch()
            total += published
            if published < self.settings.relay.batch_size:
                break
        return total

    def lag(self) -> Lag:
        """The unpublished rows: how many, the oldest one's age by the database's clock
        (see `unapplied`), how many are parked."""
        now = now_ms_sql(self.connection.vendor)
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*), {now} - MIN(ts_ms), COUNT(parked) FROM strangler_cdc_outbox "
                "WHERE published_at IS NULL"
            )
            count, age_ms, parked = cursor.fetchone()
        age = _age_s(age_ms)
        self.metrics.backlog.set(count)
        self.metrics.oldest_age.set(max(0.0, age))
        self.metrics.parked.set(parked)
        return Lag(backlog=int(count), oldest_age_s=age, parked=int(parked))

    def unapplied(
        self,
        applied_through: Mapping[str, int],
        applied_offsets: Mapping[str, Mapping[str, int]] | None = None,
    ) -> Lag:
        """The changes of the tables a receiving project consumes that it has not applied,
        published or not: the relay's lag plus the consumer's, so a consumer that died or
        stalls shows, where the outbox alone looks drained.

        Exact for a table in `applied_offsets` (per partition, the last offset the receiver
        applied; its `status` gives both): every unpublished row, and every row acknowledged
        after that offset of its partition. Offsets follow publish order, so a long transaction
        that drew its ids before others and committed after them counts until it is applied.
        For a table with only `applied_through` (a receiver of an earlier version, or rows
        published before offsets were kept) it is the rows after that position: a lower bound.

        The oldest one's age is the database's own: its clock now minus the ts_ms its
        clock wrote, so a reader whose clock runs behind the database's does not see a
        backlog as new (and an age below 0, the database's clock stepped back, stays so for
        the reader to judge rather than reading as 0)."""
        count, oldest = 0, None
        now = now_ms_sql(self.connection.vendor)
        offsets = applied_offsets or {}
        with self.connection.cursor() as cursor:
            for table, seq in sorted(applied_through.items()):
                rows, params = _unapplied_rows(table, seq, offsets.get(table))
                cursor.execute(f"SELECT COUNT(*), {now} - MIN(ts_ms) FROM ({rows}) u", params)
                found, age_ms = cursor.fetchone()
                count += found
                if age_ms is not None:
                    oldest = age_ms if oldest is None else max(oldest, age_ms)
        return Lag(backlog=int(count), oldest_age_s=_age_s(oldest))

    def purge_published(self) -> int:
        """Delete published rows older than the retention period, by the clock of the
        database that dated them (a relay whose clock ran ahead purged them early)."""
        cutoff = (
            "now() - %s * interval '1 second'"
            if self.connection.vendor == "postgresql"
            else "datetime('now', '-' || %s || ' seconds')"
        )
        with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM strangler_cdc_outbox WHERE published_at IS NOT NULL "
                f"AND published_at < {cutoff}",
                [self.settings.relay.retention_hours * 3600],
            )
            return cursor.rowcount

    def ensure_topics(self) -> None:
        """Create the captured tables' missing topics (and forget which others were)."""
        from strangler.cdc.triggers import captured_tables

        self.ensured.clear()
        self.create_topics(
            {self.settings.topic(t.table) for t in captured_tables(self.settings.capture)}
        )

    def create_topics(self, topics: set[str]) -> None:
        kafka.ensure_topics(
            self.settings.bootstrap_servers,
            topics,
            self.settings.partitions,
            self.settings.replication_factor,
            self.settings.client_options,
        )
        self.ensured |= topics

    def watch_lag(self, stopper: Stopper, every_s: float) -> threading.Thread:
        """Refresh the lag gauges from a thread of its own (own connection), so they keep
        moving while a publish is stuck on an unavailable broker."""

        def loop() -> None:
            try:
                while True:
                    try:
                        self.lag()
                    except DatabaseError as error:
                        log.warning("relay: lag not measured: %s", error)
                        connections[self.using].close()
                    if stopper.sleep(every_s):
                        return
            finally:
                connections[self.using].close()

        thread = threading.Thread(target=loop, name="cdc-relay-lag", daemon=True)
        thread.start()
        return thread

    def run(self, stopper: Stopper, housekeeping_s: float = 2.0) -> None:
        """Publish until stopped; a stop request finishes the batch in flight first."""
        failures = 0
        topics_ready = False
        next_purge = 0.0
        spec = self.settings.relay
        watcher = self.watch_lag(stopper, housekeeping_s)
        try:
            with contextlib.suppress(DatabaseError):
                if unparked := self.unpark():
                    log.info("relay: %d parked outbox rows will be tried again", unparked)
            while not stopper.stopped:
                try:
                    if not topics_ready:
                        self.ensure_topics()
                        topics_ready = True
                    if time.monotonic() >= next_purge:
                        self.purge_published()
                        self.held_tables.clear()  # checked again with the next batch
                        next_purge = time.monotonic() + housekeeping_s
                    published = self.publish_batch()
                    failures = 0
                except (PublishError, DatabaseError, KafkaError) as error:
                    failures += 1
                    # A restarted broker may have lost the topics: create them again (with
                    # the planned partitions) before the next attempt.
                    topics_ready = False
                    self.metrics.errors.inc()
                    delay = backoff(failures, spec.poll_interval_s, spec.max_backoff_s)
                    log.warning("relay: %s; retrying in %.1fs", error, delay)
                    self.connection.close()
                    stopper.sleep(delay)
                    continue
                if published < spec.batch_size:
                    stopper.sleep(spec.poll_interval_s)
        finally:
            stopper.stop()
            watcher.join(5)
            self.close()
