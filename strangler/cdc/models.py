"""Tables of the change-data machinery, in the capturing and in the receiving database."""

from __future__ import annotations

import hashlib

from django.db import models


def event_fingerprint(key: str, envelope: str) -> str:
    """A dead letter's identity: the hash of its key and message (see DeadLetter)."""
    return hashlib.sha256(f"{key}\0{envelope}".encode()).hexdigest()


class OutboxEvent(models.Model):
    """One row change, written by a database trigger in the same transaction as the change.

    `id` comes from one sequence and is the event's position (`source.seq`): per key it grows
    in commit order, because a second writer of a row waits for the first one's row lock.
    """

    id = models.BigAutoField(primary_key=True)
    app_label = models.CharField(max_length=100)
    table_name = models.CharField(max_length=200)
    row_key = models.TextField(db_column="pk")
    op = models.CharField(max_length=1)
    txid = models.BigIntegerField(null=True)
    ts_ms = models.BigIntegerField()
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    schema_version = models.SmallIntegerField(default=1)
    published_at = models.DateTimeField(null=True)
    # Why the relay could not publish it (too big for the broker); its key waits behind it.
    parked = models.TextField(null=True)
    # Where the broker acknowledged it: in publish order per partition, which is the order
    # a consumer applies in, so a receiver's applied offsets tell exactly what it has not.
    kafka_partition = models.IntegerField(null=True)
    kafka_offset = models.BigIntegerField(null=True)

    class Meta:
        db_table = "strangler_cdc_outbox"
        indexes = [
            models.Index(
                fields=["table_name", "row_key"],
                name="strangler_cdc_outbox_parked",
                condition=models.Q(parked__isnull=False),
            ),
            models.Index(
                fields=["id"],
                name="strangler_cdc_unpublished",
                condition=models.Q(published_at__isnull=True),
            ),
            models.Index(fields=["published_at"], name="strangler_cdc_published_at"),
            models.Index(
                fields=["table_name", "kafka_partition", "kafka_offset"],
                name="strangler_cdc_acked_at",
                condition=models.Q(kafka_offset__isnull=False),
            ),
        ]


class AppliedPosition(models.Model):
    """The source position of the last event applied to one target row (kept after deletes,
    until `consume.position_retention_hours` if set)."""

    source_table = models.CharField(max_length=200)
    key = models.TextField()
    seq = models.BigIntegerField()
    op = models.CharField(max_length=1)
    applied_at = models.DateTimeField(null=True)
    # When the source wrote that event (its ts_ms, the source's clock): an event written later
    # at a lower position shows the positions went backwards (see apply.behind).
    ts_ms = models.BigIntegerField(null=True)

    class Meta:
        db_table = "strangler_cdc_position"
        constraints = [
            models.UniqueConstraint(
                fields=["source_table", "key"], name="strangler_cdc_position_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["applied_at"],
                name="strangler_cdc_position_gone",
                condition=models.Q(op="d"),
            )
        ]


class DeadLetter(models.Model):
    """An event that kept failing; while unreplayed, its key is parked.

    Its identity is the event (table, key and a hash of the message), not where the broker
    kept it: offsets restart at 0 when a topic is recreated, and a new poison event at an old
    one's coordinates must not be taken for it. The same event delivered twice is one row.
    """

    topic = models.CharField(max_length=250)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    source_table = models.CharField(max_length=200)
    key = models.TextField()
    seq = models.BigIntegerField(null=True)
    envelope = models.TextField()
    fingerprint = models.CharField(max_length=64, default="")
    error = models.TextField()
    attempts = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "strangler_cdc_dead_letter"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_table", "key", "fingerprint"],
                condition=models.Q(replayed_at__isnull=True),
                name="strangler_cdc_dead_letter_pending_once",
            )
        ]


class SnapshotProgress(models.Model):
    """How far the snapshot of one table got, so an interrupted snapshot resumes."""

    table_name = models.CharField(max_length=200, unique=True)
    last_key = models.TextField(null=True)
    rows = models.BigIntegerField(default=0)
    done = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strangler_cdc_snapshot"


class Suppression(models.Model):
    """SQLite only: a row here (inside the applying transaction) silences capture triggers.

    PostgreSQL uses a transaction-local setting instead; SQLite has no session variables, but it
    has only one writer at a time, so a row visible only to the writing transaction is as local.
    """

    id = models.AutoField(primary_key=True)

    class Meta:
        db_table = "strangler_cdc_suppress"


class CapturedTableInfo(models.Model):
    """What the installed triggers capture for one table, kept in the captured database.

    Snapshot and repair read it to emit events exactly as the triggers would (same app label,
    same excluded columns), even when they run from the receiving project's side.
    """

    table_name = models.CharField(max_length=200, primary_key=True)
    app_label = models.CharField(max_length=100)
    key_column = models.CharField(max_length=200)
    columns = models.JSONField()
    json_columns = models.JSONField(default=list)
    exclude = models.JSONField(default=list)
    content_type_columns = models.JSONField(default=list)

    class Meta:
        db_table = "strangler_cdc_captured"


class PartitionProgress(models.Model):
    """The last offset applied from one topic partition, and what was there (receiving side).

    Compared with what the broker reports, it tells a log that lost records (offsets going
    backwards, a recreated topic, retention that deleted unread records) from a redelivery.
    """

    topic = models.CharField(max_length=250)
    partition = models.IntegerField()
    topic_id = models.CharField(max_length=64, default="")
    offset = models.BigIntegerField()
    seq = models.BigIntegerField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strangler_cdc_partition"
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "partition"], name="strangler_cdc_partition_once"
            )
        ]


class AcknowledgedOffset(models.Model):
    """The last offset the broker acknowledged to a relay in one topic partition (capturing
    side): a relay started later tells a log that went backwards (the broker lost it) from
    its own progress."""

    topic = models.CharField(max_length=250)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strangler_cdc_acked"
        constraints = [
            models.UniqueConstraint(fields=["topic", "partition"], name="strangler_cdc_acked_once")
        ]


class LogGap(models.Model):
    """Events the broker lost before this consumer read them; pending until reconcile repairs
    the table (`strangler cdc status` exits 1 meanwhile)."""

    topic = models.CharField(max_length=250)
    partition = models.IntegerField()
    source_table = models.CharField(max_length=200)
    reason = models.TextField()
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "strangler_cdc_log_gap"
        ordering = ["id"]
