"""One bad row does not stall the rest: a failing batch is bisected, every good key is applied,
and the bad keys share one backoff schedule however many there are.

In the test database with the monolith's consume side and a real Tansu broker (dead letters).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator

import pytest
from django.db import connection
from kafka.consumer.fetcher import ConsumerRecord

from monolith.catalog.models import Category, Product
from strangler.cdc import conf, deadletters
from strangler.cdc.consumer import Consumer
from strangler.cdc.envelope import OutboxRow, encode
from strangler.cdc.models import DeadLetter
from strangler.cdc.running import Stopper, backoff

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.kafka,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="deferred FK checks made immediate"
    ),
]
TOPIC = "catalog-service.catalog_product"


class RecordedSleeps(Stopper):
    """Never stops; keeps the delays the consumer waited (the backoff schedule it used)."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> bool:
        self.slept.append(seconds)
        return False


def record(offset: int, pk: int, category: int) -> ConsumerRecord:
    stamp = "2026-01-02T03:04:05+00:00"
    after = json.dumps({"id": pk, "sku": f"S{pk}", "slug": f"s{pk}", "name": "Tea",
                        "description": "", "price": "1.00", "currency": "EUR",
                        "is_active": True, "category_id": category, "created_at": stamp,
                        "updated_at": stamp})  # fmt: skip
    value = encode(OutboxRow(offset + 1, "catalog", "catalog_product", str(pk), "c", 1, 1, None,
                             after, 1))  # fmt: skip
    return ConsumerRecord(TOPIC, 0, -1, offset, 0, 0, str(pk).encode(), value, [], None, 2,
                          len(value), 0)  # fmt: skip


def test_a_batch_with_bad_rows_applies_every_good_row_and_parks_only_the_bad_ones(broker):
    with connection.cursor() as cursor:  # as at a real commit: the test's transaction never ends
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    tea = Category.objects.create(name="Tea", slug="tea")
    orphans = {907, 923, 931}  # their category does not exist: a foreign-key violation
    records = [record(i, 900 + i, 424242 if 900 + i in orphans else tea.pk) for i in range(40)]
    stopper = RecordedSleeps()
    settings = dataclasses.replace(conf.current(), bootstrap_servers=broker.bootstrap)
    consumer = Consumer(settings, stopper=stopper)

    consumer.process(records)

    applied = set(Product.objects.values_list("pk", flat=True))
    assert applied == {900 + i for i in range(40)} - orphans
    letters = deadletters.pending()
    assert {int(d.key) for d in letters} == orphans
    assert {d.attempts for d in letters} == {consumer.spec.max_attempts}
    assert all("foreign key" in d.error.lower() for d in letters)
    # One backoff schedule for all three, not one per bad key.
    base = consumer.spec.backoff_ms / 1000
    schedule = [backoff(a, base, 2.0) for a in range(1, consumer.spec.max_attempts)]
    assert stopper.slept == schedule


def test_a_key_parked_for_a_missing_parent_is_applied_once_the_parent_arrives(broker):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    settings = dataclasses.replace(conf.current(), bootstrap_servers=broker.bootstrap)
    consumer = Consumer(settings, stopper=RecordedSleeps())
    consumer.process([record(0, 950, 434343)])  # its category is on another topic, later
    assert [d.key for d in deadletters.pending()] == ["950"]

    consumer.retry_missing_parents()  # still no parent: stays parked, nothing lost
    assert [d.key for d in deadletters.pending()] == ["950"]
    Category.objects.create(id=434343, name="Late", slug="late")
    consumer.retry_missing_parents()

    assert Product.objects.get(pk=950).category_id == 434343
    assert deadletters.pending() == []


@contextlib.contextmanager
def dead_letter_rows_read() -> Iterator[list[int]]:
    """How many dead-letter rows the database returned to this process inside the block
    (psycopg's rowcount of each SELECT from the table): the work, not its timing."""
    read = [0]

    def count(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("SELECT") and "strangler_cdc_dead_letter" in sql:
            read[0] += max(context["cursor"].rowcount, 0)
        return result

    with connection.execute_wrapper(count):
        yield read


def park(keys: range, error: str, category: int = 1) -> None:
    DeadLetter.objects.bulk_create(
        DeadLetter(topic=TOPIC, partition=0, offset=k, source_table="catalog_product",
                   key=str(k), seq=k, envelope=record(k, k, category).value.decode(),
                   fingerprint=str(k), error=error, attempts=5)
        for k in keys
    )  # fmt: skip


def test_keys_parked_in_one_table_cost_other_batches_nothing(broker):
    # A renamed column can park every key of a table; the next batch must not read them all.
    park(range(10_000, 13_000), 'UndefinedColumn: column "colour" does not exist')
    tea = Category.objects.create(name="Tea", slug="tea")
    settings = dataclasses.replace(conf.current(), bootstrap_servers=broker.bootstrap)
    consumer = Consumer(settings, stopper=RecordedSleeps())

    with dead_letter_rows_read() as read:
        consumer.process([record(i, 900 + i, tea.pk) for i in range(40)])

    assert Product.objects.filter(pk__gte=900, pk__lt=940).count() == 40
    assert read[0] <= 40


def test_every_key_parked_for_a_missing_parent_gets_its_turn_however_many_wait(broker):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    missing = "ForeignKeyViolation: violates foreign key constraint"
    park(range(20_000, 20_200), missing, category=424242)  # their parent never comes
    park(range(20_200, 20_300), missing, category=1)
    settings = dataclasses.replace(conf.current(), bootstrap_servers=broker.bootstrap)
    consumer = Consumer(settings, stopper=RecordedSleeps())
    Category.objects.create(id=1, name="Arrived", slug="arrived")

    with dead_letter_rows_read() as read:
        for _ in range(3):  # 100 keys a round: the last 100 wait behind 200 that still fail
            consumer.retry_missing_parents(limit=100)

    assert Product.objects.filter(pk__gte=20_000).count() == 100
    assert {int(d.key) for d in deadletters.pending()} == set(range(20_000, 20_200))
    # Each key's letters are read for its own replay, not every parked letter for each key.
    assert read[0] <= 3 * 2 * 100


def test_a_column_the_source_renamed_is_named_in_a_warning_and_a_metric(broker, caplog):
    tea = Category.objects.create(name="Tea", slug="tea")
    renamed = record(0, 960, tea.pk)
    image = json.loads(renamed.value)["after"]
    image["title"] = image.pop("name")  # RenameField(name -> title) in the monolith
    value = encode(OutboxRow(1, "catalog", "catalog_product", "960", "u", 1, 1, None,
                             json.dumps(image), 1))  # fmt: skip
    settings = dataclasses.replace(conf.current(), bootstrap_servers=broker.bootstrap)
    consumer = Consumer(settings, stopper=RecordedSleeps())

    consumer.process([renamed._replace(value=value), renamed._replace(value=value, offset=1)])

    warnings = [r.getMessage() for r in caplog.records if "carry no column" in r.getMessage()]
    assert warnings == [
        "consumer: events of catalog_product carry no column for catalog.Product.name, so it "
        "is not written. Renamed or dropped in the source? Map the new name with 'rename'. "
        "Owned by this service? List it in the mapping's 'drop'."
    ]
    sample = consumer.metrics.registry.get_sample_value(
        "strangler_cdc_consumer_fields_not_carried",
        {"table": "catalog_product", "field": "name"},
    )
    assert sample == 1
