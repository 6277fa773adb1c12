"""The consumer loop: Kafka batches -> idempotent apply -> offsets committed after the commit.

A batch is applied in one transaction. If that fails with a database outage the whole batch is
retried (nothing is committed meanwhile). Any other failure is isolated per key: each key's
events are retried with backoff, and after `max_attempts` they go to the dead-letter topic
(and table) and that key is parked; later events of a parked key follow it to the dead
letters, so the key's order survives a replay. Other keys keep flowing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from strangler.cdc import deadletters, kafka
from strangler.cdc.apply import Refused, apply_events, forget_deleted_keys
from strangler.cdc.conf import CdcSettings, ConsumeSpec
from strangler.cdc.continuity import Watch
from strangler.cdc.envelope import Envelope, EnvelopeError, decode
from strangler.cdc.mapping import TableMapping, resolve
from strangler.cdc.models import DeadLetter, event_fingerprint
from strangler.cdc.running import Stopper, backoff

log = logging.getLogger("strangler.cdc.consumer")
TRANSIENT = (OperationalError, InterfaceError)


def rewind(client: KafkaConsumer, records: Iterable[ConsumerRecord]) -> None:
    """Seek each partition back to its first record in `records`: the next poll reads them
    again."""
    firsts: dict[TopicPartition, int] = {}
    for record in records:
        firsts.setdefault(TopicPartition(record.topic, record.partition), record.offset)
    for tp, offset in firsts.items():
        client.seek(tp, offset)


@dataclass
class ConsumerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.applied = Counter(
            "strangler_cdc_consumer_applied", "Events applied", registry=self.registry
        )
        self.dead_lettered = Counter(
            "strangler_cdc_consumer_dead_lettered", "Events dead-lettered", registry=self.registry
        )
        self.lag = Gauge(
            "strangler_cdc_consumer_lag_messages",
            "Messages not yet consumed",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.log_gaps = Counter(
            "strangler_cdc_consumer_log_gaps",
            "Partitions whose broker log lost events before they were applied",
            registry=self.registry,
        )
        self.fields_not_carried = Gauge(
            "strangler_cdc_consumer_fields_not_carried",
            "Target fields that the row images of their table leave out (1 each)",
            ["table", "field"],
            registry=self.registry,
        )
        self.event_age = Gauge(
            "strangler_cdc_consumer_event_age_seconds",
            "Age (source commit to apply) of the last applied event",
            registry=self.registry,
        )


class Received(NamedTuple):
    """One Kafka record and what it decoded to (None when it is not an envelope); a tuple, as
    one is built per record."""

    record: ConsumerRecord
    event: Envelope | None
    error: str | None = None

    @property
    def raw(self) -> str:
        value = self.record.value
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    @property
    def key(self) -> str:
        key = self.record.key
        return key.decode(errors="replace") if isinstance(key, bytes) else str(key or "")


class StopRequested(Exception):
    """Stop asked while a batch waited (a retry's backoff, the dead-letter topic); its
    offsets stay uncommitted."""


class Consumer:
    def __init__(
        self,
        settings: CdcSettings,
        using: str = "default",
        metrics: ConsumerMetrics | None = None,
        stopper: Stopper | None = None,
    ) -> None:
        if settings.consume is None:
            raise ValueError("STRANGLER_CDC has no 'consume' section")
        self.settings = settings
        self.spec: ConsumeSpec = settings.consume
        self.using = using
        self.metrics = metrics or ConsumerMetrics()
        self.stopper = stopper or Stopper()
        self.mappings: dict[str, TableMapping] = {
            m.source_table: resolve(m) for m in self.spec.mappings
        }
        self.topic_tables = {self.spec.topic(t): t for t in self.mappings}
        self.watch = Watch(using, self.topic_tables, self.metrics.log_gaps)
        self._producer: KafkaProducer | None = None
        self._parents_after = 0  # see retry_missing_parents
        self.fields_not_carried: set[tuple[str, str]] = set()

    # -- Kafka ---------------------------------------------------------------------------
    def client(self) -> KafkaConsumer:
        return kafka.consumer(
            self.settings.bootstrap_servers,
            self.spec.group_id,
            self.topic_tables,
            self.spec.batch_size,
            self.settings.client_options,
            self.spec.kafka_options,
        )

    def producer(self) -> KafkaProducer:
        """The dead-letter producer; its topic is ensured with each new one (nothing creates
        topics on first use)."""
        if self._producer is None:
            self.ensure_topics([self.spec.dead_letter_topic], retried=True)
            self._producer = kafka.producer(
                self.settings.bootstrap_servers, self.settings.client_options
            )
        return self._producer

    # -- one batch -----------------------------------------------------------------------
    def receive(self, record: ConsumerRecord) -> Received:
        try:
            event = decode(record.value, record.key)
        except EnvelopeError as error:
            return Received(record, None, str(error))
        if event.table not in self.mappings:
            return Received(record, None, f"no mapping for source table {event.table!r}")
        if not event.key and event.op != "t":
            return Received(record, None, "message has no key")
        return Received(record, event)

    def process(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch; returns once every record is applied, a no-op, or dead-lettered."""
        received = [self.receive(r) for r in records]
        tables = {r.event.table for r in received if r.event is not None}
        with deadletters.parking(self.using, tables):
            self._process(received)

    def _process(self, received: list[Received]) -> None:
        poison = [r for r in received if r.event is None]
        parked = deadletters.parked(
            self.using, [(r.event.table, r.event.key) for r in received if r.event is not None]
        )
        flowing: list[Received] = []
        for item in received:
            if item.event is None:
                continue
            if (item.event.table, item.event.key) in parked:
                poison.append(
                    Received(item.record, item.event, "key parked behind an earlier dead letter")
                )
            else:
                flowing.append(item)
        if poison:
            self.dead_letter(poison, attempts=1)
        self.notice_fields_not_carried(flowing)
        error = self._try(flowing)
        if error is not None:
            log.warning("consumer: batch failed (%r); isolating keys", error)
            self._isolate(flowing, error)

    def notice_fields_not_carried(self, items: Sequence[Received]) -> None:
        """Warn, once per field, about target fields the batch's row images leave out: no
        event writes them, which is stale data when the source renamed or dropped a column."""
        carried: dict[str, set[str]] = defaultdict(set)
        for item in items:
            if item.event is not None and item.event.after is not None:
                carried[item.event.table].update(item.event.after)
        for table, columns in carried.items():
            mapping = self.mappings[table]
            if mapping.handler is not None:
                continue
            for name in mapping.not_carried(columns):
                if (table, name) in self.fields_not_carried:
                    continue
                self.fields_not_carried.add((table, name))
                self.metrics.fields_not_carried.labels(table, name).set(1)
                log.warning(
                    "consumer: events of %s carry no column for %s.%s, so it is not written. "
                    "Renamed or dropped in the source? Map the new name with 'rename'. Owned "
                    "by this service? List it in the mapping's 'drop'.",
                    table,
                    mapping.model._meta.label,
                    name,
                )

    def _refuse(self, items: list[Received], refused: Refused) -> list[Received]:
        """Dead-letter the refused keys' events at once (a value that does not fit never
        will: no retries) and return the others, to be applied again."""
        kept, gone = [], []
        for item in items:
            assert item.event is not None
            reason = refused.reasons.get((item.event.table, item.event.key))
            if reason is None:
                kept.append(item)
            else:
                gone.append(Received(item.record, item.event, f"refused: {reason}"))
        self.dead_letter(gone, attempts=1)
        return kept

    def _apply(self, events: list) -> None:
        applied = apply_events(self.mappings, events, self.using)
        self.metrics.applied.inc(applied)
        log.info("consumer: %d events, %d applied, the rest no-ops", len(events), applied)

    def wait_for_database(self, error: DatabaseError, attempt: int) -> bool:
        """Close the broken connection (the next query opens a new one) and back off before
        `attempt` + 1; True when a stop was requested meanwhile."""
        connections[self.using].close()
        delay = backoff(attempt, self.spec.backoff_ms / 1000, 5.0)
        log.warning("consumer: database unavailable (%s); retry in %.1fs", error, delay)
        return self.stopper.sleep(delay)

    def _try(self, items: list[Received]) -> Exception | None:
        """Apply `items` in one transaction; the error when it fails (refused keys are
        dead-lettered on the way and the rest applied).

        A lost database is raised, not returned: the batch is read again from the start, on
        a new session that holds its tables against replays again (a broken session lost
        them) and reads which keys are parked now.
        """
        while items:
            try:
                self._apply([i.event for i in items])
            except TRANSIENT:
                raise
            except Refused as refused:
                items = self._refuse(items, refused)
                continue
            except Exception as error:
                return error
            self._observe(items)
            return None
        return None

    def _isolate(self, flowing: list[Received], error: Exception) -> None:
        """Find the keys that make a batch fail by bisection, so every other key (and table)
        is applied after about log2(keys) transactions per bad key, without waiting.

        Then only the bad keys are retried, all of them once per round with one backoff
        between rounds (a poison event holds the others up for one backoff schedule, however
        many there are), and dead-lettered after `max_attempts`.
        """
        by_key: dict[tuple[str, str], list[Received]] = defaultdict(list)
        for item in flowing:
            assert item.event is not None
            by_key[(item.event.table, item.event.key)].append(item)
        failing: dict[tuple[str, str], Exception] = {}
        pending: list[tuple[list[tuple[str, str]], Exception | None]] = [(list(by_key), error)]
        while pending:
            keys, failed = pending.pop()
            failed = failed or self._try([i for k in keys for i in by_key[k]])
            if failed is None:
                continue
            if len(keys) == 1:
                failing[keys[0]] = failed
            else:
                pending += [(keys[len(keys) // 2 :], None), (keys[: len(keys) // 2], None)]
        for attempt in range(2, self.spec.max_attempts + 1):
            if not failing:
                return
            if self.stopper.sleep(backoff(attempt - 1, self.spec.backoff_ms / 1000, 2.0)):
                raise StopRequested()
            for key in list(failing):
                again = self._try(by_key[key])
                if again is None:
                    del failing[key]
                else:
                    failing[key] = again
        for key, last in failing.items():
            letters = [Received(i.record, i.event, repr(last)) for i in by_key[key]]
            self.dead_letter(letters, attempts=self.spec.max_attempts)

    def _observe(self, items: Iterable[Received]) -> None:
        newest = max((i.event.ts_ms for i in items if i.event), default=None)
        if newest is not None:
            self.metrics.event_age.set(max(0.0, time.time() - newest / 1000))

    def dead_letter(self, items: Sequence[Received], attempts: int) -> None:
        """Record the events (which parks their keys), then publish them to the DLQ topic.

        The same event recorded twice (redelivered before its offset was committed) stays one
        dead letter; a different event at the same coordinates is another one.
        """
        DeadLetter.objects.using(self.using).bulk_create(
            [
                DeadLetter(
                    topic=i.record.topic,
                    partition=i.record.partition,
                    offset=i.record.offset,
                    source_table=i.event.table
                    if i.event
                    else self.topic_tables.get(i.record.topic, i.record.topic),
                    key=i.event.key if i.event else i.key,
                    seq=i.event.seq if i.event else None,
                    envelope=i.raw,
                    fingerprint=event_fingerprint(i.event.key if i.event else i.key, i.raw),
                    error=i.error or "",
                    attempts=attempts,
                )
                for i in items
            ],
            ignore_conflicts=True,
        )
        self._publish_dead_letters(items, attempts)
        self.metrics.dead_lettered.inc(len(items))
        for i in items:
            log.error(
                "consumer: dead-lettered %s[%s]@%s key=%s: %s",
                i.record.topic,
                i.record.partition,
                i.record.offset,
                i.key,
                i.error,
            )

    def _publish_dead_letters(self, items: Sequence[Received], attempts: int) -> None:
        """Publish to the DLQ topic until the broker acknowledges (as the relay does).

        A failed producer (e.g. UnknownProducerIdError after a broker restart) is replaced; the
        dead letters are already recorded, so a stop meanwhile loses nothing (the batch's
        offsets stay uncommitted and its redelivery finds them recorded).
        """
        messages = [
            (
                i.key.encode(),
                json.dumps(
                    {
                        "error": i.error,
                        "attempts": attempts,
                        "topic": i.record.topic,
                        "partition": i.record.partition,
                        "offset": i.record.offset,
                        "envelope": i.raw,
                    }
                ).encode(),
            )
            for i in items
        ]
        failures = 0
        while True:
            try:
                producer = self.producer()
                futures = [
                    producer.send(self.spec.dead_letter_topic, key=key, value=value)
                    for key, value in messages
                ]
                kafka.await_delivery(producer, futures)
                return
            except KafkaError as error:
                failures += 1
                kafka.discard(self._producer)
                self._producer = None
                delay = backoff(failures, self.spec.backoff_ms / 1000, 5.0)
                log.warning(
                    "consumer: dead-letter topic %s not acknowledged (%r); retry in %.1fs",
                    self.spec.dead_letter_topic,
                    error,
                    delay,
                )
                if self.stopper.sleep(delay):
                    raise StopRequested() from error

    def ensure_topics(self, names: Sequence[str], retried: bool = False) -> None:
        """Create missing topics; when `retried` by the caller, a broker still down is only
        logged."""
        try:
            kafka.ensure_topics(
                self.settings.bootstrap_servers,
                names,
                self.settings.partitions,
                self.settings.replication_factor,
                self.settings.client_options,
            )
        except KafkaError as error:
            if not retried:
                raise
            log.warning("consumer: topics %s not ensured: %r", ", ".join(names), error)

    # -- the loop ------------------------------------------------------------------------
    def update_lag(self, client: KafkaConsumer) -> None:
        try:
            self._update_lag(client)
        except KafkaError as error:
            log.warning("consumer: lag not measured: %r", error)

    def _update_lag(self, client: KafkaConsumer) -> None:
        assigned = list(client.assignment())
        if not assigned:
            return
        # The high watermark of the last fetch; ListOffsets only before the first one (Tansu
        # answers ListOffsets with 1 whatever the log holds).
        ends = {tp: client.highwater(tp) for tp in assigned}
        unknown = [tp for tp, end in ends.items() if end is None]
        ends.update(client.end_offsets(unknown) if unknown else {})
        for tp in assigned:
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(
                max(0, (ends.get(tp) or 0) - client.position(tp))
            )

    def checked(self, client: KafkaConsumer, records: list[ConsumerRecord] | None) -> bool:
        """Check the broker's log before a batch (see `continuity`); False when the broker
        could not answer, and the batch is then read again rather than applied unchecked
        (applying would move the offsets the check compares against)."""
        try:
            self.watch.check(client, records)
            return True
        except KafkaError as error:
            log.warning("consumer: broker log not checked (%r); reading the batch again", error)
            rewind(client, records or ())
            self.stopper.sleep(1.0)
            return False

    def apply_batch(self, client: KafkaConsumer, records: list[ConsumerRecord]) -> None:
        """Check, apply and remember one polled batch, then commit its offsets. On a database
        error the batch is read again (its offsets stay uncommitted: nothing is skipped, and
        what was applied already is a no-op the second time) and the error raised."""
        try:
            if not self.checked(client, records):
                return
            self.process(records)
            self.watch.remember(client, records)
        except DatabaseError:
            rewind(client, records)
            raise
        try:
            client.commit()
        except CommitFailedError as error:
            # The group rebalanced while we applied (e.g. a batch outlasted
            # max_poll_interval_ms). The rows are committed in the database; the next owner
            # of these partitions gets the events again, as no-ops.
            log.warning("consumer: offsets not committed (%s); rejoining", error)

    def retry_missing_parents(self, limit: int = 500) -> None:
        """Housekeeping: replay keys parked because a parent row had not arrived yet, `limit`
        at a time, each round after the last one's (every key gets its turn)."""
        try:
            keys = deadletters.missing_parent_keys(self.using, limit, self._parents_after)
            outcomes = [
                outcome
                for parked in keys
                for outcome in deadletters.replay(
                    self.mappings, self.using, parked.table, parked.key
                )
            ]
        except DatabaseError as error:
            log.warning("consumer: parked keys not retried: %s", error)
            return
        self._parents_after = keys[-1].first_letter if len(keys) == limit else 0
        unparked = [o for o in outcomes if o.replayed]
        if unparked:
            log.info(
                "consumer: %d keys parked for a missing parent applied and unparked: %s",
                len(unparked),
                ", ".join(f"{o.table}[{o.key}]" for o in unparked[:10]),
            )

    def forget_deleted_keys(self) -> None:
        """Housekeeping: drop positions of long-deleted keys, if a horizon is configured."""
        hours = self.spec.position_retention_hours
        if hours is None:
            return
        try:
            forgotten = forget_deleted_keys(self.using, hours)
        except DatabaseError as error:
            log.warning("consumer: positions of deleted keys not purged: %s", error)
            return
        if forgotten:
            log.info(
                "consumer: forgot the positions of %d keys deleted over %sh ago", forgotten, hours
            )

    def run(
        self,
        poll_timeout_ms: int = 500,
        lag_every_s: float = 2.0,
        forget_every_s: float = 300.0,
        retry_parked_every_s: float = 5.0,
    ) -> None:
        """Consume until stopped; offsets are committed only after each batch is durable."""
        # Source topics too: a group subscribed to a topic that does not exist yet would
        # only notice it on its next metadata refresh (minutes), once the relay creates it.
        self.ensure_topics([self.spec.dead_letter_topic, *self.topic_tables])
        client = self.client()
        next_lag = next_forget = 0.0
        next_retry = time.monotonic() + retry_parked_every_s
        failures = 0  # database errors in a row, for the backoff
        try:
            while not self.stopper.stopped:
                polled = client.poll(timeout_ms=poll_timeout_ms, max_records=self.spec.batch_size)
                records = [r for batch in polled.values() for r in batch]
                try:
                    if records:
                        self.apply_batch(client, records)
                    if time.monotonic() >= next_lag:
                        self.update_lag(client)
                        self.checked(client, None)
                        next_lag = time.monotonic() + lag_every_s
                    failures = 0
                except StopRequested:
                    break
                except DatabaseError as error:
                    # The database restarted or is down: as in a batch's own retries, wait
                    # for it rather than exit.
                    failures += 1
                    if self.wait_for_database(error, failures):
                        break
                    continue
                if time.monotonic() >= next_retry:
                    self.retry_missing_parents()
                    next_retry = time.monotonic() + retry_parked_every_s
                if time.monotonic() >= next_forget:
                    self.forget_deleted_keys()
                    next_forget = time.monotonic() + forget_every_s
        finally:
            client.close(autocommit=False)
            if self._producer is not None:
                self._producer.close(timeout=5)
