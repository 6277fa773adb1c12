"""Capture in the test database (PostgreSQL in `make test`, SQLite in the embedded default):
triggers see every write path; replica writes and rolled-back writes emit nothing; apply is
idempotent."""

from __future__ import annotations

import datetime
import io
import json
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, models, transaction
from django.test.utils import isolate_apps
from django.utils import timezone

from monolith.catalog.models import Category, Product
from monolith.promotions.models import Discount
from strangler.cdc import conf, deadletters, triggers
from strangler.cdc import relay as relay_module
from strangler.cdc.apply import Refused, apply_events, forget_deleted_keys, replica_writes
from strangler.cdc.checks import check_triggers
from strangler.cdc.conf import CaptureSpec, MappingSpec
from strangler.cdc.envelope import OutboxRow, decode, encode
from strangler.cdc.mapping import TableMapping, resolve, to_python
from strangler.cdc.models import AppliedPosition, DeadLetter, OutboxEvent, event_fingerprint
from strangler.cdc.reconcile import reconcile
from strangler.cdc.relay import Relay
from strangler.cdc.running import Stopper
from strangler.cdc.snapshot import snapshot

pytestmark = pytest.mark.django_db


def events() -> list[tuple[str, str, str]]:
    return list(OutboxEvent.objects.order_by("id").values_list("table_name", "row_key", "op"))


def test_every_write_path_is_captured_in_the_same_transaction():
    category = Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.all().delete()
    green, black = Product.objects.bulk_create(
        [
            Product(sku="G", slug="g", name="Green", price=Decimal("3.50"), category=category),
            Product(sku="B", slug="b", name="Black", price=Decimal("2.00"), category=category),
        ]
    )
    Product.objects.filter(sku="G").update(price=Decimal("4.00"))
    black.name = "Assam"
    Product.objects.bulk_update([black], ["name"])
    Product.objects.filter(sku="G").update(price=Decimal("4.00"))  # no change: no event
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM catalog_product WHERE sku = 'B'")
    with pytest.raises(ValueError), transaction.atomic():
        Product.objects.filter(sku="G").update(name="never")
        raise ValueError
    ids = [str(green.pk), str(black.pk)]
    assert events() == [
        ("catalog_product", ids[0], "c"),
        ("catalog_product", ids[1], "c"),
        ("catalog_product", ids[0], "u"),
        ("catalog_product", ids[1], "u"),
        ("catalog_product", ids[1], "d"),
    ]
    update = OutboxEvent.objects.filter(op="u").first()
    assert Decimal(str(update.after["price"])) == Decimal("4.00")
    assert update.before["name"] == "Green"


def test_applied_events_are_idempotent_and_never_echo():
    category = Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.all().delete()
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}
    after = (
        '{"id": 501, "sku": "S", "slug": "s", "name": "From the service", "description": "", '
        f'"price": 7.25, "currency": "EUR", "is_active": true, "category_id": {category.pk}, '
        '"created_at": "2026-01-02T03:04:05+00:00", "updated_at": "2026-01-02T03:04:05+00:00"}'
    )
    newer = decode(
        encode(OutboxRow(9, "catalog", "catalog_product", "501", "c", 1, 1, None, after, 1)), "501"
    )
    older = decode(
        encode(
            OutboxRow(
                4,
                "catalog",
                "catalog_product",
                "501",
                "u",
                1,
                1,
                None,
                after.replace("From the service", "stale"),
                1,
            )
        ),
        "501",
    )
    assert apply_events(mappings, [newer]) == 1
    assert apply_events(mappings, [newer, older]) == 0
    product = Product.objects.get(pk=501)
    assert (product.name, product.price) == ("From the service", Decimal("7.25"))
    assert product.created_at.year == 2026 and product.created_at.month == 1
    assert AppliedPosition.objects.get(source_table="catalog_product", key="501").seq == 9
    assert events() == []  # applied as a replica: the monolith's triggers stayed silent

    Product.objects.filter(pk=501).update(name="Edited in the monolith")
    assert events() == [("catalog_product", "501", "u")]
    with transaction.atomic(), connection.cursor() as cursor:
        assert len(Relay(conf.current()).claim(cursor, 10)) == 1


def product_event(seq: int, pk: int, category: int, name: str) -> str:
    after = (
        f'{{"id": {pk}, "sku": "S{pk}", "slug": "s{pk}", "name": "{name}", "description": "", '
        f'"price": 1.5, "currency": "EUR", "is_active": true, "category_id": {category}, '
        '"created_at": "2026-01-02 03:04:05", "updated_at": "2026-01-02 03:04:05"}'
    )
    row = OutboxRow(seq, "catalog", "catalog_product", str(pk), "u", None, 1, None, after, 1)
    return encode(row).decode()


def test_m2m_changes_of_a_captured_model_are_captured():
    category = Category.objects.create(name="Tea", slug="tea")
    tea = Product.objects.create(sku="T", slug="t", name="Tea", category=category)
    triggers.install(connection, triggers.captured_tables([CaptureSpec("promotions.Discount")]))
    OutboxEvent.objects.all().delete()
    sale = Discount.objects.create(name="Sale", percent_off=Decimal("10"))
    sale.products.add(tea)
    sale.products.clear()
    assert [(table, op) for table, _, op in events()] == [
        ("promotions_discount", "c"),
        ("promotions_discount_products", "c"),
        ("promotions_discount_products", "d"),
    ]
    link = OutboxEvent.objects.get(table_name="promotions_discount_products", op="c").after
    assert (link["discount_id"], link["product_id"]) == (sale.pk, tea.pk)


def test_replaying_a_parked_key_applies_its_dead_letters_in_order_and_unparks_it():
    category = Category.objects.create(name="Tea", slug="tea")
    for offset, (seq, name) in enumerate([(5, "first"), (6, "second")]):
        DeadLetter.objects.create(
            topic="monolith.catalog_product",
            partition=0,
            offset=offset,
            source_table="catalog_product",
            key="601",
            seq=seq,
            envelope=product_event(seq, 601, category.pk, name),
            fingerprint=event_fingerprint("601", product_event(seq, 601, category.pk, name)),
            error="database was read-only",
            attempts=5,
        )
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}

    outcomes = deadletters.replay(mappings)

    assert [(o.table, o.key, o.events, o.replayed) for o in outcomes] == [
        ("catalog_product", "601", 2, True)
    ]
    assert Product.objects.get(pk=601).name == "second"
    assert deadletters.pending() == []


class StopAfter(Stopper):
    """A stop request that arrives after `chunks` snapshot chunks (an interrupted run)."""

    def __init__(self, chunks: int) -> None:
        super().__init__()
        self.left = chunks

    @property
    def stopped(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_an_interrupted_snapshot_resumes_where_it_stopped():
    Category.objects.bulk_create([Category(name=f"C{i}", slug=f"c{i}") for i in range(25)])
    OutboxEvent.objects.all().delete()

    first = snapshot("default", "catalog_category", chunk_size=10, stopper=StopAfter(1))
    second = snapshot("default", "catalog_category", chunk_size=10)

    assert (first.rows, first.done) == (10, False)
    assert (second.rows, second.done) == (25, True)
    keys = sorted(Category.objects.values_list("pk", flat=True))
    assert second.resumed_after == keys[9]
    emitted = list(OutboxEvent.objects.filter(op="r").values_list("row_key", flat=True))
    assert sorted(int(k) for k in emitted) == keys  # every row once, none twice
    assert OutboxEvent.objects.get(op="r", row_key=str(keys[0])).after["slug"] == "c0"


def test_published_rows_older_than_the_retention_are_purged():
    category = Category.objects.create(name="Tea", slug="tea")
    Category.objects.filter(pk=category.pk).update(name="Green tea")
    published, pending = OutboxEvent.objects.order_by("id")
    OutboxEvent.objects.filter(pk=published.pk).update(
        published_at=timezone.now() - datetime.timedelta(hours=2)
    )
    settings = conf.parse({"relay": {"retention_hours": 1}})

    assert Relay(settings).purge_published() == 1
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [pending.pk]
    assert Relay(settings).lag().backlog == 1


def test_published_rows_are_purged_by_the_databases_clock_not_the_relays(monkeypatch):
    # The relay's host clock runs two hours ahead of the database that dated the rows (two
    # machines; a skewed clock cannot be made here, so the relay's `time` is shifted): a row
    # published 30 minutes ago was purged under a 1 hour retention.
    Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.update(published_at=timezone.now() - datetime.timedelta(minutes=30))
    ahead = SimpleNamespace(
        time=lambda: time.time() + 7200, monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(relay_module, "time", ahead)
    assert Relay(conf.parse({"relay": {"retention_hours": 1}})).purge_published() == 0
    assert OutboxEvent.objects.count() == 1


def test_the_backlogs_age_is_the_databases_not_the_readers_clock(monkeypatch):
    # The reader (the `cdc status` process) runs a minute behind the database that dated
    # the rows: a backlog 5 s old by the database's clock read as -55 s, rounded up to 0,
    # and the runbook's cdc_lag gate passed with changes unapplied.
    Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.update(ts_ms=models.F("ts_ms") - 5000)  # written 5 s ago
    behind = SimpleNamespace(
        time=lambda: time.time() - 60, monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(relay_module, "time", behind)
    relay = Relay(conf.parse({}))
    lag, unapplied = relay.lag(), relay.unapplied({"catalog_category": 0})
    assert lag.backlog >= 1 and 5 <= lag.oldest_age_s < 30, lag
    assert unapplied.backlog >= 1 and 5 <= unapplied.oldest_age_s < 30, unapplied


def test_unapplied_counts_by_partition_offset_what_a_receiver_has_not_applied():
    def outbox(pk: str, partition: int | None, offset: int | None) -> None:
        published = timezone.now() if partition is not None or offset == -1 else None
        OutboxEvent.objects.create(
            app_label="catalog", table_name="catalog_category", row_key=pk, op="u", ts_ms=1,
            published_at=published, kafka_partition=partition,
            kafka_offset=None if offset == -1 else offset,
        )  # fmt: skip

    outbox("unpublished", None, None)
    outbox("published before offsets were kept", None, -1)
    for partition in range(5):
        for offset in (4, 5, 6):
            outbox(f"p{partition}@{offset}", partition, offset)
    relay = Relay(conf.parse({}))
    # Applied through offset 5 of partition 1 and 6 of partition 3; nothing from 0, 2 and 4.
    applied = relay.unapplied({"catalog_category": 10**9}, {"catalog_category": {"1": 5, "3": 6}})
    assert applied.backlog == 1 + 0 + 3 + 1 + 3 + 0 + 3  # unpublished, legacy, p0..p4

    legacy = OutboxEvent.objects.get(row_key="published before offsets were kept").id
    older = relay.unapplied({"catalog_category": legacy - 1}, {"catalog_category": {}})
    assert older.backlog == 1 + 1 + 15  # nothing applied from any partition
    # By ids alone (a receiver without offsets) the unpublished row, whose id is older, is
    # missed: the lower bound the offsets replace.
    assert relay.unapplied({"catalog_category": legacy - 1}).backlog == 16
    through = json.dumps({"catalog_category": 0})
    with pytest.raises(CommandError, match="tables not in --applied-through: catalog_product"):
        call_command("cdc_status", "--applied-through", through,
                     "--applied-offsets", '{"catalog_product": {"0": 1}}')  # fmt: skip
    for offsets in ('{"catalog_category": {"\u0663": 1}}', '{"catalog_category": [1]}', "{"):
        with pytest.raises(CommandError, match="--applied-offsets"):
            call_command("cdc_status", "--applied-through", through, "--applied-offsets", offsets)


def test_a_change_dated_in_the_databases_future_is_reported_so_not_as_new():
    # The database's clock stepped back a minute after writing the row: its age is below
    # 0, which `cdc status` reports as it is for the gate to refuse, not as 0 s.
    Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.update(ts_ms=models.F("ts_ms") + 60_000)
    out = io.StringIO()
    through = json.dumps({"catalog_category": 0})
    call_command("cdc_status", "--json", "--applied-through", through, stdout=out)
    status = json.loads(out.getvalue())
    assert status["oldest_unapplied_seconds"] < -50, status
    assert status["oldest_unpublished_seconds"] < -50, status


def drop_capture_trigger(table: str, sqlite_suffix: str) -> None:
    """PostgreSQL: the table's trigger; SQLite: one of its four (enough to let writes through)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER {triggers.PG_TRIGGER} ON {table}")
        else:
            cursor.execute(f'DROP TRIGGER "{triggers.sqlite_trigger_name(table, sqlite_suffix)}"')


def test_a_captured_table_without_triggers_is_reported():
    drop_capture_trigger("catalog_product", "k")  # SQLite: key changes would go uncaptured
    messages = check_triggers(databases=["default"])
    assert [(m.id, "'catalog_product'" in m.msg) for m in messages] == [("cdc.W001", True)]
    assert "cdc_triggers" in messages[0].hint


def test_a_product_renumbered_by_its_primary_key_is_a_delete_and_a_create():
    category = Category.objects.create(name="Tea", slug="tea")
    tea = Product.objects.create(sku="T", slug="t", name="Tea", category=category)
    OutboxEvent.objects.all().delete()

    Product.objects.filter(pk=tea.pk).update(id=tea.pk + 1000)

    old, new = str(tea.pk), str(tea.pk + 1000)
    assert events() == [("catalog_product", old, "d"), ("catalog_product", new, "c")]
    gone, created = OutboxEvent.objects.order_by("id")
    assert (gone.before["id"], gone.after) == (tea.pk, None)
    assert (created.before, created.after["id"], created.after["sku"]) == (None, tea.pk + 1000, "T")


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="session_replication_role is PostgreSQL's"
)


@postgres_only
def test_a_bulk_load_run_as_a_replication_replica_is_still_captured():
    category = Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.all().delete()
    with transaction.atomic(), connection.cursor() as cursor:
        # What pgloader-style loaders and FK-skipping scripts do; it silences ordinary triggers.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE catalog_category SET name = 'Green tea' WHERE id = %s", [category.pk]
        )
    assert events() == [("catalog_category", str(category.pk), "u")]


@postgres_only
def test_a_disabled_capture_trigger_is_reported():
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE catalog_product DISABLE TRIGGER {triggers.PG_TRIGGER}")
    messages = check_triggers(databases=["default"])
    assert [(m.id, "'catalog_product'" in m.msg) for m in messages] == [("cdc.W001", True)]


def test_a_captured_float_keeps_every_digit():
    with isolate_apps("monolith.catalog"):

        class Reading(models.Model):
            value = models.FloatField(null=True)
            price = models.DecimalField(max_digits=10, decimal_places=2, null=True)

            class Meta:
                app_label = "catalog"
                db_table = "cdc_test_reading"

    real, decimal = (
        ("double precision", "numeric(10, 2)")
        if connection.vendor == "postgresql"
        else ("real", "decimal")
    )
    with connection.cursor() as cursor:  # inside the test's transaction, on either database
        cursor.execute(
            f"CREATE TABLE cdc_test_reading (id integer PRIMARY KEY, value {real}, price {decimal})"
        )
    triggers.install(connection, [triggers.captured_table(Reading, ())])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cdc_test_reading (id, value, price) VALUES (1, %s, %s), (2, NULL, NULL)",
            [0.1 + 0.2, Decimal("0.10")],
        )
    images = {e.row_key: e.after for e in OutboxEvent.objects.filter(table_name="cdc_test_reading")}
    assert images["1"]["value"] == 0.1 + 0.2  # 0.30000000000000004, not 0.3
    assert Decimal(str(images["1"]["price"])) == Decimal("0.10")
    assert (images["2"]["value"], images["2"]["price"]) == (None, None)


def test_positions_of_long_deleted_keys_are_forgotten_after_the_horizon():
    category = Category.objects.create(name="Tea", slug="tea")
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}
    created = decode(product_event(11, 801, category.pk, "kept").replace('"u"', '"c"'), "801")
    gone = [
        decode(product_event(seq, pk, category.pk, "gone"), str(pk))
        for seq, pk in [(12, 802), (13, 803)]
    ]
    deletes = [
        decode(
            encode(
                OutboxRow(seq, "catalog", "catalog_product", str(pk), "d", None, 1, "{}", None, 1)
            ),
            str(pk),
        )
        for seq, pk in [(14, 802), (15, 803)]
    ]
    apply_events(mappings, [created, *gone, *deletes])
    positions = AppliedPosition.objects.filter(source_table="catalog_product")
    positions.filter(key__in=["801", "802"]).update(
        applied_at=timezone.now() - datetime.timedelta(hours=3)
    )

    assert forget_deleted_keys("default", older_than_hours=2) == 1  # 802: deleted 3 h ago
    assert sorted(positions.values_list("key", "op")) == [("801", "c"), ("803", "d")]
    # The documented price: a very late duplicate of 802's update now brings the row back.
    assert apply_events(mappings, [gone[0]]) == 1
    assert Product.objects.filter(pk=802).exists()
    assert apply_events(mappings, [gone[1]]) == 0  # 803 was deleted recently: still remembered


def test_a_replica_block_nested_in_another_keeps_the_outer_one_silent():
    # e.g. a custom handler that applies events itself, inside the consumer's apply
    category = Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.all().delete()
    with transaction.atomic():
        with replica_writes(connection):
            with replica_writes(connection):
                Category.objects.filter(pk=category.pk).update(name="inner")
            Category.objects.filter(pk=category.pk).update(name="outer")
        Category.objects.filter(pk=category.pk).update(name="own write")
    assert events() == [("catalog_category", str(category.pk), "u")]
    assert OutboxEvent.objects.get().after["name"] == "own write"


def test_a_field_only_the_service_has_is_not_drift():
    with isolate_apps("monolith.catalog"):

        class ServiceCategory(models.Model):
            name = models.CharField(max_length=120)
            slug = models.SlugField(max_length=140)
            rank = models.IntegerField(default=0)  # the service's own field, not in the source

            class Meta:
                app_label = "catalog"
                db_table = "cdc_test_service_category"

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE cdc_test_service_category "
            "(id integer PRIMARY KEY, name varchar(120), slug varchar(140), rank integer)"
        )
    tea = Category.objects.create(name="Tea", slug="tea")
    ServiceCategory.objects.create(id=tea.pk, name="Tea", slug="tea", rank=5)
    fields = {f.attname: f for f in ServiceCategory._meta.concrete_fields}
    mapping = TableMapping(
        MappingSpec("catalog_category", "catalog.ServiceCategory"),
        ServiceCategory,
        fields,
        fields["id"],
        transforms={},
        handler=None,
    )

    (drift,) = reconcile([mapping], source="default", target="default")

    assert (drift.source_rows, drift.target_rows, drift.drifted) == (1, 1, 0)
    # Not drift, but said: the same holds for a column the source renamed (stale data).
    assert drift.fields_not_carried == ("rank",)


def test_the_relay_warns_at_start_about_a_table_written_without_capture():
    drop_capture_trigger("catalog_category", "u")
    OutboxEvent.objects.all().delete()  # nothing to publish: no broker needed
    stderr = io.StringIO()
    call_command("cdc_relay", once=True, stdout=io.StringIO(), stderr=stderr)
    assert "cdc.W001" in stderr.getvalue() and "'catalog_category'" in stderr.getvalue()


def test_a_captured_duration_arrives_as_the_same_duration():
    with isolate_apps("monolith.catalog"):

        class Timer(models.Model):
            length = models.DurationField()

            class Meta:
                app_label = "catalog"
                db_table = "cdc_test_timer"

    column = "interval" if connection.vendor == "postgresql" else "bigint"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE cdc_test_timer (id integer PRIMARY KEY, length {column})")
    triggers.install(connection, [triggers.captured_table(Timer, ())])
    length = datetime.timedelta(days=1, hours=2, microseconds=5)
    Timer.objects.create(id=1, length=length)

    image = OutboxEvent.objects.get(table_name="cdc_test_timer").after
    assert to_python(Timer._meta.get_field("length"), image["length"]) == length


def test_no_missing_trigger_warning_before_our_own_migrations_ran():
    # A project adding strangler.cdc: its tables exist, ours and the triggers not yet, and the
    # check runs at the start of the very `migrate` that installs them.
    drop_capture_trigger("catalog_product", "k")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE strangler_cdc_captured")
    assert check_triggers(databases=["default"]) == []


def test_a_snapshot_accepts_the_model_label_as_well_as_the_table():
    Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.all().delete()

    result = snapshot("default", "catalog.Category")

    assert (result.table, result.rows, result.done) == ("catalog_category", 1, True)
    assert events() == [("catalog_category", str(Category.objects.get().pk), "r")]


def test_an_event_newer_than_the_applied_one_at_a_lower_position_is_refused_never_skipped():
    # The source restored from a backup (or its outbox recreated) draws positions again from
    # below those applied: its new events used to be skipped as old, silently and forever.
    category = Category.objects.create(name="Tea", slug="tea")
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}

    def event(seq: int, ts_ms: int, name: str):
        after = (
            f'{{"id": 601, "sku": "S", "slug": "s", "name": "{name}", "description": "", '
            f'"price": 7.25, "currency": "EUR", "is_active": true, "category_id": {category.pk}, '
            '"created_at": "2026-01-02T03:04:05+00:00", "updated_at": "2026-01-02T03:04:05+00:00"}'
        )
        row = OutboxRow(seq, "catalog", "catalog_product", "601", "u", 1, ts_ms, None, after, 1)
        return decode(encode(row), "601")

    assert apply_events(mappings, [event(9000, 1_700_000_000_000, "before the restore")]) == 1
    # Redelivered, and genuinely older: no-ops, as ever.
    assert apply_events(mappings, [event(9000, 1_700_000_000_000, "before the restore")]) == 0
    assert apply_events(mappings, [event(8000, 1_699_999_999_000, "older")]) == 0

    with pytest.raises(Refused) as refused:
        apply_events(mappings, [event(12, 1_700_000_360_000, "after the restore")])

    reason = refused.value.reasons[("catalog_product", "601")]
    assert reason.startswith(
        "position went backwards: seq 12 was written 2023-11-14T22:19:20+00:00, after the "
        "applied seq 9000 (2023-11-14T22:13:20+00:00)"
    )
    assert Product.objects.get(pk=601).name == "before the restore"


def test_a_datetime_without_an_offset_is_read_in_the_mappings_naive_time_zone():
    tea = Category.objects.create(name="Tea", slug="tea")
    image = {"id": 900, "category_id": tea.pk, "sku": "N1", "slug": "n1", "name": "Naive",
             "description": "", "price": "1.00", "currency": "EUR", "is_active": True,
             "created_at": "2026-07-01T12:00:00",
             "updated_at": "2026-07-01T12:00:00+00:00"}  # fmt: skip
    row = OutboxRow(1, "catalog", "catalog_product", "900", "c", 1, 1, None, json.dumps(image), 1)
    spec = MappingSpec("catalog_product", "catalog.Product", naive_time_zone="Europe/Berlin")
    apply_events({"catalog_product": resolve(spec)}, [decode(encode(row), "900")])

    product = Product.objects.get(pk=900)
    assert product.created_at == datetime.datetime(2026, 7, 1, 10, 0, tzinfo=datetime.UTC)
    assert product.updated_at == datetime.datetime(2026, 7, 1, 12, 0, tzinfo=datetime.UTC)
    utc = resolve(MappingSpec("catalog_product", "catalog.Product"))
    assert utc.target_values(image)["created_at"].utcoffset() == datetime.timedelta(0)
