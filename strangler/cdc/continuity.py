"""Did the broker lose records this consumer had not read? Checks over offsets and topic ids.

A broker can lose its log after the relay published and before the consumer read: the
embedded broker restarting (memory storage), a topic deleted and recreated, retention deleting
records a lagging consumer never read. Offsets then restart or jump, which a consumer that
resets to `earliest` follows without a word; these checks tell that from a redelivery.
`gap` and `replaced` are the logic; `Watch` reads the broker and records what it finds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import Counter

from strangler.cdc import kafka
from strangler.cdc.envelope import EnvelopeError, decode
from strangler.cdc.models import LogGap, PartitionProgress

log = logging.getLogger("strangler.cdc.consumer")


@dataclass(frozen=True)
class Seen:
    """What this consumer last applied from one partition."""

    topic_id: str
    offset: int
    seq: int | None


@dataclass(frozen=True)
class BrokerLog:
    """What the broker reports for the partition now (topic id '' when it reports none; end
    None before a fetch reported the high watermark)."""

    topic_id: str
    beginning: int
    end: int | None


def gap(seen: Seen, log: BrokerLog) -> str | None:
    """Why records after `seen` can no longer be read from `log` (None: nothing was lost)."""
    if seen.topic_id and log.topic_id and seen.topic_id != log.topic_id:
        return f"topic id changed from {seen.topic_id} to {log.topic_id} (topic recreated)"
    if log.end is not None and log.end <= seen.offset:
        return (
            f"the log ends at offset {log.end} but offset {seen.offset} was already applied "
            "(the broker lost its log)"
        )
    if log.beginning > seen.offset + 1:
        return (
            f"the log starts at offset {log.beginning}: offsets {seen.offset + 1}.."
            f"{log.beginning - 1} were deleted before they were read (retention)"
        )
    return None


def replaced(seen: Seen, offset: int, seq: int | None) -> str | None:
    """Why the record now at `seen`'s offset shows that the log was replaced, or None."""
    if offset != seen.offset or seen.seq is None or seq is None or seq == seen.seq:
        return None
    return (
        f"offset {offset} now holds event seq {seq}, not the seq {seen.seq} applied from it "
        "(the log was replaced)"
    )


def _seq(record: ConsumerRecord) -> int | None:
    try:
        return decode(record.value, record.key).seq
    except EnvelopeError:
        return None


class Watch:
    """Keeps each partition's last applied offset and records a `LogGap` when the broker's log
    no longer holds what came after it (status exits 1 until reconcile repairs the table)."""

    def __init__(self, using: str, topic_tables: Mapping[str, str], gaps: Counter) -> None:
        self.using = using
        self.topic_tables = topic_tables
        self.gaps = gaps

    def seen(self, partitions: set[TopicPartition]) -> dict[TopicPartition, Seen]:
        rows = PartitionProgress.objects.using(self.using).filter(
            topic__in={tp.topic for tp in partitions}
        )
        found = {
            TopicPartition(r.topic, r.partition): Seen(r.topic_id, r.offset, r.seq) for r in rows
        }
        return {tp: s for tp, s in found.items() if tp in partitions}

    def check(self, client: KafkaConsumer, records: Sequence[ConsumerRecord] | None) -> None:
        """Before a batch is applied (or, with None, for every assigned partition while idle)."""
        firsts: dict[tuple[str, int], ConsumerRecord] = {}
        for record in records or ():  # plain tuples: a TopicPartition per record costs
            firsts.setdefault((record.topic, record.partition), record)
        first = {TopicPartition(*tp): record for tp, record in firsts.items()}
        seen = self.seen(set(first) if records is not None else set(client.assignment()))
        # A batch that continues right after the last applied offset needs no broker question.
        suspect = [tp for tp in seen if tp not in first or first[tp].offset != seen[tp].offset + 1]
        if not suspect:
            return
        begins = client.beginning_offsets(suspect)
        for tp in suspect:
            # The high watermark of the last fetch, not ListOffsets: Tansu answers that with 1.
            end = client.highwater(tp)
            now = BrokerLog(kafka.topic_id(client, tp.topic), begins.get(tp, 0), end)
            reason = gap(seen[tp], now) or next(
                (
                    replaced(seen[tp], r.offset, _seq(r))
                    for r in records or ()
                    if (r.topic, r.partition, r.offset) == (tp.topic, tp.partition, seen[tp].offset)
                ),
                None,
            )
            if reason is not None:
                self.record(tp, reason)

    def record(self, tp: TopicPartition, reason: str) -> None:
        table = self.topic_tables.get(tp.topic, tp.topic)
        with transaction.atomic(using=self.using):
            LogGap.objects.using(self.using).create(
                topic=tp.topic, partition=tp.partition, source_table=table, reason=reason
            )
            # What follows is the new log: it becomes the baseline for the next checks.
            PartitionProgress.objects.using(self.using).filter(
                topic=tp.topic, partition=tp.partition
            ).delete()
        self.gaps.inc()
        log.error(
            "consumer: events of %s[%d] were lost by the broker before they were applied: %s. "
            "Run `strangler cdc reconcile --repair --table %s` in this project (or "
            "`strangler cdc snapshot %s` in the source) to bring the table back in sync.",
            tp.topic,
            tp.partition,
            reason,
            table,
            table,
        )

    def remember(self, client: KafkaConsumer, records: Sequence[ConsumerRecord]) -> None:
        """After a batch: the last offset applied from each of its partitions."""
        last: dict[tuple[str, int], ConsumerRecord] = {}
        for record in records:
            last[(record.topic, record.partition)] = record
        PartitionProgress.objects.using(self.using).bulk_create(
            [
                PartitionProgress(
                    topic=topic,
                    partition=partition,
                    topic_id=kafka.topic_id(client, topic),
                    offset=r.offset,
                    seq=_seq(r),
                )
                for (topic, partition), r in last.items()
            ],
            update_conflicts=True,
            unique_fields=["topic", "partition"],
            update_fields=["topic_id", "offset", "seq", "updated_at"],
        )


def pending_gaps(using: str = "default") -> list[LogGap]:
    return list(LogGap.objects.using(using).filter(resolved_at__isnull=True))


def resolve_gaps(using: str, tables: Sequence[str]) -> int:
    """Mark the tables' gaps repaired (reconcile found no drift, or re-emitted it)."""
    return (
        LogGap.objects.using(using)
        .filter(resolved_at__isnull=True, source_table__in=list(tables))
        .update(resolved_at=timezone.now())
    )
