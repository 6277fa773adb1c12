"""Broker faults: a dead letter is the event itself (never dropped for sitting at an old one's
coordinates) and is published even after the producer lost its broker session; the relay
refuses a topic whose partition count is not the plan's, and only its table waits.

In the test database with the monolith's consume side and a real Tansu broker.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid

import psycopg
import pytest
from django.db import DatabaseError, connection, connections
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord

from monolith.catalog.models import Category, Product
from strangler.cdc import conf, deadletters
from strangler.cdc import consumer as consumer_module
from strangler.cdc.consumer import Consumer
from strangler.cdc.envelope import OutboxRow, encode
from strangler.cdc.models import DeadLetter, OutboxEvent
from strangler.cdc.relay import Relay
from tests.cdc.harness import PG_ADMIN, Tansu

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]
TOPIC = "catalog-service.catalog_product"


def product_record(offset: int, image: dict, seq: int) -> ConsumerRecord:
    """What the broker hands the consumer: an update of the product in `image` at `offset`."""
    key = str(image["id"])
    value = encode(OutboxRow(seq, "catalog", "catalog_product", key, "u", 1, 1, None,
                             json.dumps(image), 1))  # fmt: skip
    return ConsumerRecord(
        TOPIC, 0, -1, offset, 0, 0, key.encode(), value, [], None, 2, len(value), 0
    )


def record(offset: int, name: str, seq: int, key: str = "42") -> ConsumerRecord:
    """A product event for key 42 (or `key`) at `offset`, with a partial row image."""
    image = {"id": int(key), "sku": "S", "slug": "s", "name": name, "category_id": 1}
    return product_record(offset, image, seq)


def fresh_topics(bootstrap: str, **changes) -> conf.CdcSettings:
    """The project's setting on `bootstrap`, with topics of its own (a prefix no test shares)."""
    return dataclasses.replace(
        conf.current(), bootstrap_servers=bootstrap, topic_prefix=f"p{uuid.uuid4().hex}.", **changes
    )


def consumer(bootstrap: str) -> Consumer:
    return Consumer(dataclasses.replace(conf.current(), bootstrap_servers=bootstrap))


def dead_letter_topic(bootstrap: str, topic: str) -> list[dict]:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=2000)
    reader.assign([TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or []])
    reader.seek_to_beginning()
    found = [json.loads(m.value) for m in reader]
    reader.close()
    return found


def test_a_new_poison_event_at_an_old_ones_offset_is_still_dead_lettered(broker):
    applier = consumer(broker.bootstrap)
    first = record(5, "x" * 300, seq=100)  # too long for varchar(200): refused

    applier.process([first])
    applier.process([first])  # redelivered before its offset was committed: the same event
    assert [d.seq for d in deadletters.pending()] == [100]
    deadletters.replay(applier.mappings, discard=True)

    # The topic was recreated: offsets restart and a new poison event lands at offset 5 again.
    applier.process([record(5, "y" * 300, seq=7)])

    letters = deadletters.pending()
    assert [(d.offset, d.seq, "y" * 300 in d.envelope) for d in letters] == [(5, 7, True)]
    assert "varchar(200) would truncate it" in letters[0].error


def test_a_dead_letter_producer_that_lost_its_broker_session_recovers():
    tansu = Tansu().start()
    try:
        applier = consumer(tansu.bootstrap)
        applier.process([record(1, "x" * 300, seq=100)])
        tansu.stop()  # memory storage: the restarted broker has never heard of our producer id
        tansu.start()

        applier.process([record(2, "y" * 300, seq=101, key="43")])

        assert sorted(d.seq for d in deadletters.pending()) == [100, 101]
        published = dead_letter_topic(tansu.bootstrap, applier.spec.dead_letter_topic)
        assert [json.loads(p["envelope"])["source"]["seq"] for p in published] == [101]
    finally:
        tansu.stop()


def test_a_topic_with_the_wrong_partition_count_holds_only_its_own_table(broker):
    settings = fresh_topics(broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    # e.g. auto-created by a restarted broker with its own default
    admin.create_topics([NewTopic(settings.topic("catalog_category"), 4, 1)])
    admin.create_topics([NewTopic(settings.topic("catalog_product"), 3, 1)])
    admin.close()
    tea = Category.objects.create(name="Tea", slug="tea")
    Product.objects.create(sku="T1", slug="t1", name="Sencha", category=tea)
    relay = Relay(settings)

    assert relay.publish_batch() == 1
    assert relay.publish_batch() == 0  # the category's row waits, not claimed again

    relay.close()
    unpublished = OutboxEvent.objects.filter(published_at__isnull=True)
    assert list(unpublished.values_list("table_name", flat=True)) == ["catalog_category"]
    assert relay.held_tables["catalog_category"].startswith(
        f"topic {settings.topic('catalog_category')} has 4 partitions but "
        "STRANGLER_CDC['topics'] plans 3"
    )
    topic = settings.topic("catalog_category")
    mismatch = relay.metrics.registry.get_sample_value(
        "strangler_cdc_relay_topic_partition_mismatch", {"topic": topic}
    )
    assert mismatch == 1


def test_a_table_whose_topic_the_relay_has_not_created_gets_the_planned_partitions(broker):
    # A model captured after the relay started (its topics ensured at start): the producer's
    # metadata request made the broker create the topic with its own default of 4 partitions,
    # and the table was held until someone recreated it.
    settings = fresh_topics(broker.bootstrap)
    Category.objects.create(name="Late", slug="late")
    relay = Relay(settings)

    assert relay.publish_batch() == 1

    relay.close()
    assert relay.held_tables == {}
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    assert reader.partitions_for_topic(settings.topic("catalog_category")) == {0, 1, 2}
    reader.close()
    # Where it was acknowledged is kept with the row: what a receiver has not applied is
    # counted from it (the first message of a new topic is at offset 0).
    [published] = OutboxEvent.objects.filter(published_at__isnull=False)
    assert (published.kafka_partition in (0, 1, 2), published.kafka_offset) == (True, 0)


def test_a_row_too_big_for_the_broker_is_parked_and_holds_only_its_own_key(broker):
    small_limit = fresh_topics(broker.bootstrap, client_options={"max_request_size": 4000})
    big = Category.objects.create(name="Big", slug="big", description="x" * 6000)
    other = Category.objects.create(name="Other", slug="other")
    Category.objects.filter(pk=big.pk).update(name="Big, renamed")  # waits behind the first
    relay = Relay(small_limit)
    relay.ensure_topics()

    assert relay.publish_batch() == 1  # only the other key flowed

    rows = {(r.row_key, r.op): r for r in OutboxEvent.objects.all()}
    first, later = rows[(str(big.pk), "c")], rows[(str(big.pk), "u")]
    assert rows[(str(other.pk), "c")].published_at is not None
    assert "over the producer's max_request_size of 4000" in first.parked
    assert (first.published_at, later.published_at, later.parked) == (None, None, None)
    assert relay.lag().parked == 1
    assert relay.metrics.registry.get_sample_value("strangler_cdc_outbox_parked") == 1
    assert relay.publish_batch() == 0  # still held: per-key order
    relay.close()

    raised = Relay(dataclasses.replace(small_limit, client_options={}))
    assert raised.unpark() == 1  # what a restart does, after the limit was raised
    assert raised.publish_batch() == 2
    raised.close()
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_key_the_consumer_parks_while_it_is_replayed_is_not_reported_replayed(
    broker, monkeypatch
):
    # The consumer read the key as parked, the replay then applied its letters and found
    # none pending, and the consumer parked its new event behind them: "replayed", while the
    # key stayed parked with a letter nobody would replay.
    if connection.vendor != "postgresql":
        pytest.skip("one writer at a time on SQLite: no interleaving")
    applier = consumer(broker.bootstrap)
    tea = Category.objects.create(name="Tea", slug="tea-race")
    product = Product.objects.create(sku="S77", slug="s77", name="before", category=tea)
    image = OutboxEvent.objects.filter(table_name="catalog_product").latest("id").after
    applier.process([product_record(5, {**image, "name": "x" * 300}, seq=10**6)])  # refused
    letter = DeadLetter.objects.get(key=str(product.pk))
    fixed = json.loads(letter.envelope)
    fixed["after"]["name"] = "fixed"
    DeadLetter.objects.filter(pk=letter.pk).update(envelope=json.dumps(fixed))
    outcomes: list = []
    threads: list[threading.Thread] = []
    read_parked = deadletters.parked

    def replay() -> None:  # in a thread of its own, with its own database session
        outcomes.extend(deadletters.replay(applier.mappings, key=letter.key))
        connections["default"].close()

    def replay_meanwhile(using, keys):
        found = read_parked(using, keys)
        monkeypatch.setattr(deadletters, "parked", read_parked)
        replaying = threading.Thread(target=replay)
        replaying.start()
        threads.append(replaying)
        replaying.join(1.5)  # it waits for this batch when the batch holds the key's table
        return found

    monkeypatch.setattr(deadletters, "parked", replay_meanwhile)
    applier.process([product_record(6, {**image, "name": "newer"}, seq=10**6 + 1)])
    threads[0].join(30)

    [outcome] = outcomes
    assert outcome.replayed, outcome
    assert deadletters.pending(key=letter.key) == []
    assert Product.objects.get(pk=product.pk).name == "newer"


@pytest.mark.django_db(transaction=True)
def test_a_replay_waiting_on_a_stuck_consumer_batch_says_so_instead_of_hanging(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    applier = Consumer(conf.current())
    DeadLetter.objects.create(topic=TOPIC, partition=0, offset=1, source_table="catalog_product",
                              key="5", seq=1, envelope="{}", fingerprint="5", error="refused",
                              attempts=5)  # fmt: skip
    monkeypatch.setattr(deadletters, "PARKING_WAIT_S", 0.5)
    stuck = threading.Event()
    done = threading.Event()

    def stuck_batch() -> None:  # a consumer batch of the table that never finishes
        with deadletters.parking("default", ["catalog_product"]):
            stuck.set()
            done.wait(10)
        connections["default"].close()

    holder = threading.Thread(target=stuck_batch)
    holder.start()
    try:
        assert stuck.wait(10)
        [outcome] = deadletters.replay(applier.mappings, key="5")
    finally:
        done.set()
        holder.join(10)
    assert not outcome.replayed
    assert "waited 0.5 s for consumer batches of catalog_product" in (outcome.error or "")
    assert len(deadletters.pending(key="5")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_lost_its_database_session_applies_again_holding_its_tables(monkeypatch):
    # The session's shared parking locks went with it; retried on the new session without
    # them, a replay could interleave with the batch.
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    applier = Consumer(conf.current())
    tea = Category.objects.create(name="Tea", slug="tea-outage")
    product = Product.objects.create(sku="S78", slug="s78", name="before", category=tea)
    image = OutboxEvent.objects.filter(table_name="catalog_product").latest("id").after
    held: list[bool] = []
    apply_events = consumer_module.apply_events

    def apply_on_a_session_that_dies_once(mappings, events, using):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s",
                [deadletters.PARKING_LOCK_CLASS],
            )
            held.append(cursor.fetchone()[0] > 0)
            if len(held) == 1:
                cursor.execute("SELECT pg_backend_pid()")
                with psycopg.connect(PG_ADMIN, autocommit=True) as other:
                    other.execute("SELECT pg_terminate_backend(%s)", [cursor.fetchone()[0]])
        return apply_events(mappings, events, using)

    monkeypatch.setattr(consumer_module, "apply_events", apply_on_a_session_that_dies_once)
    batch = [product_record(7, {**image, "name": "after the outage"}, seq=10**6 + 7)]
    for _ in range(3):  # as the consume loop does: the batch again, once the database answers
        try:
            applier.process(batch)
            break
        except DatabaseError:
            connections["default"].close()

    assert held == [True, True]
    assert Product.objects.get(pk=product.pk).name == "after the outage"


def resets_publishing(settings, rename: str) -> float:
    """Rename the tea in the monolith, publish it with a new relay process; its log resets."""
    Category.objects.filter(slug="tea").update(name=rename)  # one key: one partition
    relay = Relay(settings)
    assert relay.publish_batch() == 1
    relay.close()
    return relay.metrics.registry.get_sample_value("strangler_cdc_relay_log_resets_total")


def test_a_broker_that_lost_its_log_is_reported_by_a_relay_started_after_it():
    # Offsets going backwards were noticed only against what the same relay process had seen:
    # relay and broker restarted together (the embedded default) said nothing.
    tansu = Tansu().start()
    try:
        settings = fresh_topics(tansu.bootstrap)
        Category.objects.create(name="Tea", slug="tea")
        relay = Relay(settings)
        assert relay.publish_batch() == 1
        relay.close()
        assert [resets_publishing(settings, n) for n in ("Green", "Black")] == [0, 0]  # 1, 2
        tansu.stop()  # memory storage: the restarted broker's log is empty
        tansu.start()
        assert resets_publishing(settings, "Oolong") == 1  # offset 0 after 2
        # The next relay compares with the new log, not the old one's higher offsets.
        assert resets_publishing(settings, "White") == 0  # offset 1 after 0
    finally:
        tansu.stop()
