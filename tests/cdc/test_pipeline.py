"""The monolith's catalog reaches the catalog service through outbox, relay, Kafka, consumer.

Real PostgreSQL (two databases), a real Kafka-protocol broker (Tansu), real processes that are
killed with SIGKILL mid-flight. After every story the two databases hold the same rows and
`cdc_reconcile` reports zero drift.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import httpx
import psycopg
import pytest
from django.core.management import call_command
from django.db import connections, transaction
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from monolith.catalog.models import Category, Product, ProductAttribute, ProductImage
from strangler.cdc.envelope import OutboxRow, encode
from tests.cdc.conftest import CONSUMER_READY, MONOLITH, RELAY_READY
from tests.cdc.harness import Proc, free_port, query, run, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]

products = Product.objects.db_manager(MONOLITH)
categories = Category.objects.db_manager(MONOLITH)


def assert_no_drift(pipeline) -> None:
    report = pipeline.reconcile()
    assert report["drifted"] == 0, report
    assert sum(t["source_rows"] for t in report["tables"]) > 0


def make_products(category: Category, prefix: str, count: int) -> list[Product]:
    return products.bulk_create(
        [
            Product(
                sku=f"{prefix}-{i}",
                slug=f"{prefix.lower()}-{i}",
                name=f"{prefix} item {i}",
                price=Decimal("10.00") + i,
                category=category,
            )
            for i in range(count)
        ]
    )


def test_orm_bulk_and_raw_sql_changes_reach_the_service(pipeline):
    shirts = categories.create(name="Shirts", slug="shirts")
    books = categories.create(name="Books", slug="books", parent=None)
    tee = products.create(
        sku="TEE-1", slug="tee", name="Tee", price=Decimal("12.50"), category=shirts
    )
    tee.name = "Plain tee"
    tee.save()
    ProductImage.objects.using(MONOLITH).create(product=tee, url="https://img/tee.png")
    ProductAttribute.objects.using(MONOLITH).create(product=tee, name="colour", value="red")
    batch = make_products(books, "BOOK", 50)
    products.filter(sku__startswith="BOOK").update(price=Decimal("9.99"))
    for product in batch[:10]:
        product.name = product.name.upper()
    products.bulk_update(batch[:10], ["name"])
    products.filter(sku__in=["BOOK-48", "BOOK-49"]).delete()
    with connections[MONOLITH].cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET is_active = false WHERE sku = 'BOOK-0'")
        cursor.execute("DELETE FROM catalog_product WHERE sku = 'BOOK-47'")
    with pytest.raises(RuntimeError), transaction.atomic(using=MONOLITH):
        products.filter(sku="TEE-1").update(name="rolled back")
        raise RuntimeError("the change above must never reach the service")

    pipeline.wait_converged()
    service = dict(query(pipeline.service_url, "SELECT sku, name FROM catalog_product"))
    assert service["TEE-1"] == "Plain tee"
    assert service["BOOK-3"] == "BOOK ITEM 3"
    assert "BOOK-47" not in service and "BOOK-49" not in service
    assert query(
        pipeline.service_url, "SELECT price FROM catalog_product WHERE sku = 'BOOK-5'"
    ) == [(Decimal("9.99"),)]
    # Applied events never echo: the service's own outbox stays empty.
    assert query(pipeline.service_url, "SELECT COUNT(*) FROM strangler_cdc_outbox") == [(0,)]
    assert_no_drift(pipeline)
    for process, logger in ((pipeline.relay, "strangler.cdc.relay"),
                            (pipeline.consumer, "strangler.cdc.consumer")):  # fmt: skip
        lines = [json.loads(line) for line in process.output().splitlines() if line[:1] == "{"]
        assert any(line["logger"] == logger and line["level"] == "info" for line in lines)


def wait_consumed(pipeline, timeout: float = 40) -> None:
    """Wait until the consumer group committed every message of its topics."""
    admin = KafkaAdminClient(bootstrap_servers=pipeline.broker.bootstrap)
    probe = KafkaConsumer(bootstrap_servers=pipeline.broker.bootstrap)
    try:

        def caught_up() -> bool:
            committed = admin.list_group_offsets("catalog-service").get("catalog-service", {})
            if not committed:
                return False
            ends = probe.end_offsets(list(committed))
            return all(committed[tp].offset >= ends[tp] for tp in committed)

        wait_for(caught_up, timeout, "the consumer group to catch up", 0.3)
    finally:
        admin.close()
        probe.close()


def churn(rounds: int, prefix: str, base: int) -> None:
    """Many row changes in a few transactions: `rounds` price rewrites of every matching row."""
    for round_ in range(rounds):
        products.filter(sku__startswith=prefix).update(price=Decimal(base + round_))


def writing_transaction(url: str) -> bool:
    """Another session of this database holds an open transaction that has written rows."""
    return bool(
        query(
            url,
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
        )
    )


def test_consumer_killed_mid_batch_loses_nothing(pipeline):
    make_products(categories.create(name="Load", slug="load"), "LOAD", 1500)
    churn(4, "LOAD", 100)
    # Mid-batch = some LOAD rows are in, and the consumer holds a transaction that has written.
    wait_for(
        lambda: query(pipeline.service_url, "SELECT 1 FROM catalog_product WHERE sku LIKE 'LOAD%'")
        and writing_transaction(pipeline.service_url),
        30,
        "the consumer in the middle of applying a batch",
        0.01,
    )  # fmt: skip
    pipeline.consumer.kill9()
    assert pipeline.differences(), "killed too late: everything was already applied"
    pipeline.consumer.start(ready=CONSUMER_READY)
    pipeline.wait_converged()
    assert_no_drift(pipeline)


def relay_in_transaction(pipeline) -> bool:
    database = pipeline.monolith_url.rsplit("/", 1)[1]
    return bool(
        query(
            pipeline.monolith_url,
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND state = 'idle in transaction'",
            (database,),
        )
    )


def test_relay_killed_mid_publish_loses_nothing_and_stops_gracefully(pipeline):
    assert pipeline.relay.stop() == 0  # SIGTERM: finishes its batch, exits cleanly
    churn(4, "LOAD", 200)
    total = pipeline.outbox_backlog()
    assert total >= 6000
    pipeline.relay.start()
    # Mid-publish = the relay's claiming transaction is open while it talks to the broker.
    wait_for(
        lambda: pipeline.outbox_backlog() < total and relay_in_transaction(pipeline),
        30,
        "the relay in the middle of publishing a batch",
        0.01,
    )
    pipeline.relay.kill9()
    assert pipeline.outbox_backlog() > 0, "killed too late: everything was already published"
    pipeline.relay.start(ready=RELAY_READY)
    pipeline.wait_converged()
    assert pipeline.outbox_backlog() == 0
    assert_no_drift(pipeline)


def test_broker_unavailable_relay_keeps_rows_and_retries(pipeline):
    pipeline.broker.pause()
    try:
        churn(1, "BOOK", 300)
        # The relay's gauges keep telling the truth while its publish is stuck.
        wait_for(
            lambda: pipeline.metric(pipeline.relay_metrics, "strangler_cdc_outbox_backlog") == 47,
            15,
            "the backlog gauge to show the 47 unpublished changes",
        )
        time.sleep(1)
        assert pipeline.outbox_backlog() == 47, (
            "rows must stay unpublished while the broker is down"
        )
        age = pipeline.metric(
            pipeline.relay_metrics, "strangler_cdc_outbox_oldest_unpublished_seconds"
        )
        assert age is not None and age > 0
    finally:
        pipeline.broker.resume()
    pipeline.wait_converged(timeout=60)
    # The frozen broker may still take what the timed-out producer had sent (the kernel
    # buffered it): the service converges from those while the relay, which kept the rows
    # unpublished, sends them again (at least once) a moment later.
    wait_for(lambda: pipeline.outbox_backlog() == 0, 30, "the relay to publish the kept rows")
    assert_no_drift(pipeline)
    wait_for(
        lambda: pipeline.metric(pipeline.relay_metrics, "strangler_cdc_outbox_backlog") == 0,
        15,
        "the backlog gauge back to 0",
    )
    assert pipeline.metric(pipeline.consumer_metrics, "strangler_cdc_consumer_applied_total") > 0


def terminate_sessions(url: str) -> int:
    """End every other session of the database, as a restart of its server does."""
    return query(
        url,
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )[0][0]


def test_consumer_keeps_running_through_service_database_restarts(pipeline):
    make_products(categories.create(name="Restart", slug="restart"), "RESTART", 20)
    pipeline.wait_converged()
    for round_ in range(2):
        assert terminate_sessions(pipeline.service_url) > 0
        if round_ == 0:
            time.sleep(3)  # idle past the consumer's 2 s broker-log check, which meets it first
        churn(1, "RESTART", 500 + round_)
        pipeline.wait_converged()
        assert pipeline.consumer.process.poll() is None, pipeline.consumer.output()[-2000:]
    assert_no_drift(pipeline)


def test_duplicate_and_out_of_order_delivery_converge(pipeline):
    first_tee_event = query(
        pipeline.monolith_url,
        "SELECT id, app_label, table_name, pk, op, txid, ts_ms, before::text, after::text, "
        "schema_version FROM strangler_cdc_outbox WHERE table_name = 'catalog_product' "
        "AND after->>'sku' = 'TEE-1' ORDER BY id LIMIT 1",
    )[0]
    # Every event again (duplicates, old ones after newer ones), then the very first TEE-1.
    query(pipeline.monolith_url, "UPDATE strangler_cdc_outbox SET published_at = NULL")
    wait_for(lambda: pipeline.outbox_backlog() == 0, 60, "the relay to republish everything")
    producer = KafkaProducer(bootstrap_servers=pipeline.broker.bootstrap)
    producer.send(
        "monolith.catalog_product",
        key=first_tee_event[3].encode(),
        value=encode(OutboxRow(*first_tee_event)),
    )
    producer.flush()
    producer.close()
    # A fresh change of another key in the same partition lands behind the stale event: once
    # it shows in the service, the stale event was consumed before it - and changed nothing.
    marker = same_partition_product(pipeline, first_tee_event[3])
    products.filter(pk=marker).update(name="marker behind the stale event")
    wait_for(
        lambda: query(pipeline.service_url, "SELECT name FROM catalog_product WHERE id = %s",
                      (marker,)) == [("marker behind the stale event",)],
        30,
        "the marker change behind the stale event",
    )  # fmt: skip
    wait_consumed(pipeline)
    assert not pipeline.differences()
    assert query(pipeline.service_url, "SELECT name FROM catalog_product WHERE sku = 'TEE-1'") == [
        ("Plain tee",)
    ]
    assert_no_drift(pipeline)


def same_partition_product(pipeline, key: str) -> int:
    """Another product whose key hashes to the same partition of the product topic."""
    reader = KafkaConsumer(bootstrap_servers=pipeline.broker.bootstrap)
    count = len(reader.partitions_for_topic("monolith.catalog_product"))
    reader.close()

    def partition(value: str) -> int:
        return (murmur2(value.encode()) & 0x7FFFFFFF) % count

    return next(
        pk
        for pk in products.exclude(pk=int(key)).values_list("pk", flat=True)
        if partition(str(pk)) == partition(key)
    )


def test_poison_event_is_dead_lettered_and_other_keys_flow(pipeline):
    poison = {
        "id": "catalog_product:999000001",
        "source": {"app": "catalog", "table": "catalog_product", "txid": 1, "seq": 999000001},
        "op": "u",
        "ts_ms": int(time.time() * 1000),
        "before": None,
        "after": {"id": 777777, "sku": "POISON", "price": "not-a-number", "category_id": 1},
        "schema_version": 1,
    }
    producer = KafkaProducer(bootstrap_servers=pipeline.broker.bootstrap)
    producer.send("monolith.catalog_product", key=b"777777", value=json.dumps(poison).encode())
    producer.flush()
    products.create(
        sku="AFTER-POISON", slug="after-poison", name="Still flows", category=categories.first()
    )
    pipeline.wait_converged()
    letters = wait_for(lambda: pipeline.dead_letters(), 30, "the poison event's dead letter")
    assert [(d["table"], d["key"], d["attempts"]) for d in letters] == [
        ("catalog_product", "777777", 2)
    ]
    assert "not-a-number" in letters[0]["error"] or "decimal" in letters[0]["error"].lower()

    # A later event of the parked key follows it to the dead letters, keeping the key's order.
    later = dict(poison, source=dict(poison["source"], seq=999000002))
    later["after"] = dict(poison["after"], price="1.00")
    producer.send("monolith.catalog_product", key=b"777777", value=json.dumps(later).encode())
    producer.flush()
    producer.close()
    wait_for(lambda: len(pipeline.dead_letters()) == 2, 30, "the parked key's second event")
    code, reported = pipeline.service_status()
    assert code == 1  # a gate reading it sees the pending dead letters
    assert (reported["dead_letters"], reported["parked_keys"]) == (2, 1)
    assert reported["rows_tracked"] > 0
    assert query(pipeline.service_url, "SELECT 1 FROM catalog_product WHERE id = 777777") == []

    dlq = KafkaConsumer(bootstrap_servers=pipeline.broker.bootstrap, consumer_timeout_ms=3000)
    partitions = [
        TopicPartition("catalog-service.dead-letters", p)
        for p in dlq.partitions_for_topic("catalog-service.dead-letters") or []
    ]
    dlq.assign(partitions)
    dlq.seek_to_beginning()
    parked = [json.loads(m.value) for m in dlq]
    dlq.close()
    assert sorted(json.loads(p["envelope"])["source"]["seq"] for p in parked) == [
        999000001,
        999000002,
    ]

    replayed = pipeline.service("cdc_deadletters", "replay", "--key", "777777", "--discard")
    assert replayed.returncode == 0, replayed.stderr
    assert pipeline.dead_letters() == []
    assert pipeline.service_status()[0] == 0
    assert_no_drift(pipeline)


def test_snapshot_while_writes_continue_converges(pipeline):
    # A service that never saw the history: empty tables, no positions.
    assert pipeline.consumer.stop() == 0
    query(
        pipeline.service_url,
        "TRUNCATE catalog_category, catalog_product, catalog_productimage, "
        "catalog_productattribute, strangler_cdc_position",
    )
    pipeline.consumer.start(ready=CONSUMER_READY)
    stop_writing = threading.Event()
    writes = []

    def keep_writing() -> None:
        try:
            for i in range(400):
                if stop_writing.is_set():
                    break
                products.filter(sku=f"LOAD-{(i * 37) % 1500}").update(price=Decimal(1000 + i))
                if i % 50 == 0:
                    products.filter(sku=f"LOAD-{1499 - i}").delete()
                writes.append(i)
        finally:
            connections[MONOLITH].close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        for table in (
            "catalog_category",
            "catalog_product",
            "catalog_productimage",
            "catalog_productattribute",
        ):
            call_command("cdc_snapshot", table, database=MONOLITH, chunk_size=200, verbosity=0)
    finally:
        stop_writing.set()
        writer.join(30)
    assert writes, "the writer must overlap the snapshot"
    pipeline.wait_converged(timeout=60)
    assert_no_drift(pipeline)


def test_reconcile_reports_and_repairs_exactly_the_drifted_rows(pipeline):
    missing, different = (
        products.get(sku="BOOK-7").pk,
        products.get(sku="BOOK-8").pk,
    )
    query(pipeline.service_url, "DELETE FROM catalog_product WHERE id = %s", (missing,))
    query(
        pipeline.service_url,
        "UPDATE catalog_product SET name = 'tampered' WHERE id = %s",
        (different,),
    )
    query(
        pipeline.service_url,
        "INSERT INTO catalog_product (id, sku, slug, name, description, price, currency, "
        "is_active, category_id, created_at, updated_at) SELECT 888888, 'EXTRA', 'extra', "
        "'extra', '', 1, 'EUR', true, category_id, created_at, updated_at "
        "FROM catalog_product WHERE id = %s",
        (different,),
    )
    report = pipeline.reconcile("--chunk-size", "10")
    drift = {t["table"]: t for t in report["tables"]}["catalog_product"]
    assert (drift["missing"], drift["extra"], drift["different"]) == (
        [missing],
        [888888],
        [different],
    )
    assert report["drifted"] == 3
    assert drift["ranges_differing"] < drift["ranges"]

    repaired = pipeline.reconcile("--repair")
    assert repaired["repaired"] == {"catalog_product": [2, 1]}
    pipeline.wait_converged()
    assert_no_drift(pipeline)


def test_celery_beat_task_publishes_the_outbox(pipeline, settings):
    from strangler.cdc.tasks import relay

    assert pipeline.relay.stop() == 0
    try:
        products.filter(sku="TEE-1").update(name="Tee via Celery")
        assert pipeline.outbox_backlog() == 1
        settings.STRANGLER_CDC = {
            **settings.STRANGLER_CDC,
            "kafka": {"bootstrap_servers": pipeline.broker.bootstrap},
        }
        assert relay.apply(kwargs={"using": MONOLITH}).get() == 1
        assert pipeline.outbox_backlog() == 0
        pipeline.wait_converged()
    finally:
        pipeline.relay.start(ready=RELAY_READY)


def topic_messages(pipeline, topic: str) -> list[dict]:
    """Every message of a topic, partition by partition, in offset order."""
    reader = KafkaConsumer(bootstrap_servers=pipeline.broker.bootstrap, consumer_timeout_ms=2000)
    partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or []]
    reader.assign(partitions)
    reader.seek_to_beginning()
    messages = [json.loads(m.value) for m in reader]
    reader.close()
    return messages


def test_two_relays_share_the_outbox_without_publishing_twice(pipeline):
    assert pipeline.relay.stop() == 0
    (last_before,) = query(pipeline.monolith_url, "SELECT MAX(id) FROM strangler_cdc_outbox")[0]
    churn(2, "LOAD", 400)
    changes = pipeline.outbox_backlog()
    (last_after,) = query(pipeline.monolith_url, "SELECT MAX(id) FROM strangler_cdc_outbox")[0]
    second = Proc(
        ["monolith.manage", "cdc_relay"], pipeline.monolith_env, pipeline.tmp / "relay-2.log"
    ).start(ready=RELAY_READY)
    pipeline.relay.start(ready=RELAY_READY)
    try:
        wait_for(lambda: pipeline.outbox_backlog() == 0, 60, "both relays to drain the outbox")
    finally:
        assert second.stop() == 0
    published = [
        m
        for m in topic_messages(pipeline, "monolith.catalog_product")
        if last_before < m["source"]["seq"] <= last_after
    ]
    seqs = [m["source"]["seq"] for m in published]
    assert len(seqs) == len(set(seqs)) == changes  # each row exactly once
    last_seq: dict[str, int] = {}
    for message in published:  # per partition, in offset order: each key's seq only grows
        key = str(message["after"]["id"])
        assert message["source"]["seq"] > last_seq.get(key, 0)
        last_seq[key] = message["source"]["seq"]
    pipeline.wait_converged()


CONTRACT = [
    "/api/v1/products",
    "/api/v1/products?page=2&page_size=7",
    "/api/v1/products?ordering=-price,id&page_size=50",
    "/api/v1/products?min_price=9&max_price=12&is_active=true",
    "/api/v1/products?category_slug=books&search=BOOK",
    "/api/v1/categories",
    "/api/v1/categories?root=true",
]


def serve(pipeline, name: str, app: str, env: dict[str, str]) -> tuple[Proc, str]:
    port = free_port()
    process = Proc(
        ["gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env,
        pipeline.tmp / f"{name}.log",
    ).start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, 30, f"{name} to answer /healthz")
    return process, url


def test_service_serves_the_same_catalog_json_as_the_monolith(pipeline):
    pipeline.wait_converged()
    monolith, monolith_url = serve(
        pipeline, "monolith-web", "monolith.wsgi:application", pipeline.monolith_env
    )
    service, service_url = serve(
        pipeline, "catalog-web", "extracted.catalog_service.wsgi:application", pipeline.service_env
    )
    try:
        tee = products.get(sku="TEE-1").pk
        for path in [*CONTRACT, f"/api/v1/products/{tee}", "/api/v1/products/999999999"]:
            expected = httpx.get(monolith_url + path, timeout=10)
            actual = httpx.get(service_url + path, timeout=10)
            assert actual.status_code == expected.status_code, path
            body = actual.json()
            if expected.status_code == 200:
                want = json.loads(expected.text.replace(monolith_url, service_url))
                # When each page was read: differs on every call, on each side alike.
                for page in (body, want):
                    assert page.pop("generated_at", "") or "results" not in page, path
                assert body == want, path
        first_page = httpx.get(service_url + CONTRACT[0], timeout=10).json()
        assert first_page["count"] > 20 and len(first_page["results"]) == 20
    finally:
        monolith.stop()
        service.stop()


def test_what_a_stopped_consumer_has_not_applied_shows_where_the_outbox_looks_drained(pipeline):
    # A row of its own, applied before the consumer stops: the test stands alone (-k).
    hats, _ = categories.get_or_create(slug="hats", defaults={"name": "Hats"})
    products.create(sku="HAT-1", slug="hat-1", name="Hat", price=Decimal("5.00"), category=hats)
    pipeline.wait_converged()
    wait_consumed(pipeline)
    assert pipeline.consumer.stop() == 0
    try:
        products.filter(sku="HAT-1").update(name="while the consumer is away")
        wait_for(lambda: pipeline.outbox_backlog() == 0, 30, "the relay to publish it")
        time.sleep(1.1)
        through = json.dumps(pipeline.service_status()[1]["applied_through"])
        source = pipeline.monolith_status("--applied-through", through)
        assert (source["outbox_backlog"], source["unapplied"]) == (0, 1)
        assert source["oldest_unapplied_seconds"] >= 1
    finally:
        pipeline.consumer.start(ready=CONSUMER_READY)
    wait_consumed(pipeline)
    through = json.dumps(pipeline.service_status()[1]["applied_through"])
    assert pipeline.monolith_status("--applied-through", through)["unapplied"] == 0
    bad = run(["strangler", "cdc", "status", "--applied-through", '{"catalog_product": "x"}'],
              pipeline.monolith_env | {"DJANGO_SETTINGS_MODULE": "monolith.settings"})  # fmt: skip
    assert bad.returncode == 2 and "--applied-through: expected an object" in bad.stderr


def unapplied(pipeline) -> dict:
    """The monolith's status given what the service's status says it applied, as the runbook's
    cdc_lag gate asks for it."""
    applied = pipeline.service_status()[1]
    through = ["--applied-through", json.dumps(applied["applied_through"])]
    if "applied_offsets" in applied:
        through += ["--applied-offsets", json.dumps(applied["applied_offsets"])]
    return pipeline.monolith_status(*through)


def test_a_long_transaction_committed_after_later_ones_counts_as_unapplied(pipeline):
    # Its outbox id is drawn at its write, before a later transaction's; that one is applied
    # first, and its position passed the long one's id: 0 unapplied while the row was missing.
    early, _ = categories.get_or_create(slug="long-tx", defaults={"name": "Long"})
    later, _ = categories.get_or_create(slug="short-tx", defaults={"name": "Short"})
    pipeline.wait_converged()
    wait_consumed(pipeline)
    with psycopg.connect(pipeline.monolith_url) as long_transaction:
        long_transaction.execute(
            "UPDATE catalog_category SET name = 'written first, committed last' WHERE id = %s",
            (early.pk,),
        )
        categories.filter(pk=later.pk).update(name="written second, committed first")
        wait_for(
            lambda: query(pipeline.service_url, "SELECT name FROM catalog_category WHERE id = %s",
                          (later.pk,)) == [("written second, committed first",)],
            30, "the later transaction in the service",
        )  # fmt: skip
        wait_consumed(pipeline)
        assert pipeline.consumer.stop() == 0
    try:
        wait_for(lambda: pipeline.outbox_backlog() == 0, 30, "the relay to publish it")
        source = unapplied(pipeline)
        assert (source["outbox_backlog"], source["unapplied"]) == (0, 1), source
    finally:
        pipeline.consumer.start(ready=CONSUMER_READY)
    pipeline.wait_converged()
    wait_consumed(pipeline)
    assert unapplied(pipeline)["unapplied"] == 0
    bad = run(["strangler", "cdc", "status", "--applied-through", '{"catalog_category": 1}',
               "--applied-offsets", '{"catalog_category": {"zero": 1}}'],
              pipeline.monolith_env | {"DJANGO_SETTINGS_MODULE": "monolith.settings"})  # fmt: skip
    assert bad.returncode == 2 and "--applied-offsets: expected an object" in bad.stderr
