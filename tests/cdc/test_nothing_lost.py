"""Nothing reaches the service altered, and nothing is lost without a loud signal.

Real PostgreSQL (two databases), the real Tansu broker, relay and consumer as real processes.
The broker is restarted (memory storage: its log is gone) at the end of this module, so these
stories run on a pipeline of their own.
"""

from __future__ import annotations

import pytest

from tests.cdc.conftest import CONSUMER_READY, RELAY_READY
from tests.cdc.harness import query, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]


def service_product(pipeline, pk: int) -> tuple | None:
    rows = query(
        pipeline.service_url, "SELECT name, price FROM catalog_product WHERE id = %s", (pk,)
    )
    return rows[0] if rows else None


def test_a_value_the_service_cannot_hold_is_parked_never_truncated_even_by_repair(pipeline):
    # The monolith's columns were widened by a migration the service has not followed yet.
    mono = pipeline.monolith_url
    query(mono, "ALTER TABLE catalog_product ALTER name TYPE varchar(300)")
    query(mono, "ALTER TABLE catalog_product ALTER price TYPE numeric(14, 4)")
    query(mono, "INSERT INTO catalog_category (name, slug, description, created_at, updated_at) "
                "VALUES ('Tea', 'tea', '', now(), now())")  # fmt: skip
    (category,) = query(mono, "SELECT id FROM catalog_category WHERE slug = 'tea'")[0]
    insert = (
        "INSERT INTO catalog_product (sku, slug, name, description, price, currency, is_active, "
        "category_id, created_at, updated_at) VALUES (%s, %s, %s, '', %s, 'EUR', true, %s, "
        "now(), now()) RETURNING id"
    )
    long_name = "n" * 217
    (wide,) = query(mono, insert, ("WIDE", "wide", long_name, "1.00", category))[0]
    (precise,) = query(mono, insert, ("PRECISE", "precise", "Precise", "10.1299", category))[0]
    (plain,) = query(mono, insert, ("PLAIN", "plain", "Plain", "3.50", category))[0]

    wait_for(lambda: service_product(pipeline, plain), 30, "the plain product to arrive")
    letters = wait_for(lambda: len(pipeline.dead_letters()) == 2 and pipeline.dead_letters(), 30,
                       "both refused products to be dead-lettered")  # fmt: skip
    reasons = {int(d["key"]): d["error"] for d in letters}
    assert "217 characters; varchar(200) would truncate it" in reasons[wide]
    assert "10.1299 has 4 decimal places; numeric(12, 2) would round it" in reasons[precise]
    assert service_product(pipeline, wide) is None
    assert service_product(pipeline, precise) is None
    code, status = pipeline.service_status()
    assert (code, status["parked_keys"]) == (1, 2)

    # Repair travels the normal path: it is refused again, and still writes nothing altered.
    report = pipeline.reconcile("--table", "catalog_product", "--repair")
    drift = report["tables"][0]
    assert sorted(drift["missing"]) == sorted([wide, precise])
    wait_for(lambda: len(pipeline.dead_letters()) == 4, 30, "the repair's events to be refused")
    assert service_product(pipeline, wide) is None
    assert service_product(pipeline, precise) is None

    # Once the service can hold the values, a replay applies them exactly.
    svc = pipeline.service_url
    query(svc, "ALTER TABLE catalog_product ALTER name TYPE varchar(300)")
    query(svc, "ALTER TABLE catalog_product ALTER price TYPE numeric(14, 4)")
    discarded = pipeline.service("cdc_deadletters", "replay", "--discard")
    assert discarded.returncode == 0, discarded.stderr
    query(mono, "DELETE FROM catalog_product WHERE id IN (%s, %s, %s)", (wide, precise, plain))
    query(mono, "DELETE FROM catalog_category WHERE id = %s", (category,))
    wait_for(lambda: service_product(pipeline, plain) is None, 30, "the deletes to arrive")
    query(mono, "ALTER TABLE catalog_product ALTER name TYPE varchar(200)")
    query(mono, "ALTER TABLE catalog_product ALTER price TYPE numeric(12, 2)")
    query(svc, "ALTER TABLE catalog_product ALTER name TYPE varchar(200)")
    query(svc, "ALTER TABLE catalog_product ALTER price TYPE numeric(12, 2)")


def test_a_truncated_table_is_emptied_in_the_service_too(pipeline):
    mono = pipeline.monolith_url
    query(mono, "INSERT INTO catalog_category (name, slug, description, created_at, updated_at) "
                "VALUES ('Jam', 'jam', '', now(), now())")  # fmt: skip
    (category,) = query(mono, "SELECT id FROM catalog_category WHERE slug = 'jam'")[0]
    query(
        mono,
        "INSERT INTO catalog_product (sku, slug, name, description, price, currency, is_active, "
        "category_id, created_at, updated_at) SELECT 'J-' || i, 'j-' || i, 'Jam ' || i, '', 2, "
        "'EUR', true, %s, now(), now() FROM generate_series(1, 40) AS i",
        (category,),
    )
    query(mono, "INSERT INTO catalog_productimage (product_id, url, alt_text, position) "
                "SELECT id, 'https://img/' || id, '', 0 FROM catalog_product")  # fmt: skip
    pipeline.wait_converged()
    assert len(pipeline.rows(pipeline.service_url, "catalog_productimage")) == 40

    query(mono, "TRUNCATE catalog_product CASCADE")  # empties the images too
    query(
        mono,
        "INSERT INTO catalog_product (sku, slug, name, description, price, currency, is_active, "
        "category_id, created_at, updated_at) VALUES ('NEW', 'new', 'New', '', 1, 'EUR', true, "
        "%s, now(), now())",
        (category,),
    )

    pipeline.wait_converged()
    assert [r[1] for r in pipeline.rows(pipeline.service_url, "catalog_product")] == ["NEW"]
    assert pipeline.rows(pipeline.service_url, "catalog_productimage") == []
    assert pipeline.reconcile()["drifted"] == 0
    query(mono, "DELETE FROM catalog_product")


def consumer_log_gaps(pipeline) -> float | None:
    return pipeline.metric(pipeline.consumer_metrics, "strangler_cdc_consumer_log_gaps_total")


def test_events_the_broker_lost_before_they_were_read_are_detected_and_repaired(pipeline):
    mono = pipeline.monolith_url
    query(mono, "INSERT INTO catalog_category (name, slug, description, created_at, updated_at) "
                "VALUES ('Oil', 'oil', '', now(), now())")  # fmt: skip
    (category,) = query(mono, "SELECT id FROM catalog_category WHERE slug = 'oil'")[0]
    query(
        mono,
        "INSERT INTO catalog_product (sku, slug, name, description, price, currency, is_active, "
        "category_id, created_at, updated_at) SELECT 'O-' || i, 'o-' || i, 'Oil ' || i, '', 2, "
        "'EUR', true, %s, now(), now() FROM generate_series(1, 30) AS i",
        (category,),
    )
    pipeline.wait_converged()
    assert pipeline.service_status()[1]["log_gaps"] == 0

    pipeline.consumer.stop()
    query(mono, "UPDATE catalog_product SET name = name || ' (lost)'")
    wait_for(lambda: not pipeline.outbox_backlog(), 30, "the relay to publish the updates")
    pipeline.relay.stop()  # the embedded broker's restart order (docs/cdc.md)
    pipeline.broker.stop()  # memory storage: the published, unread updates are gone
    pipeline.broker.start()
    pipeline.relay.start(ready=RELAY_READY)
    pipeline.consumer.start(ready=CONSUMER_READY)
    query(mono, "UPDATE catalog_category SET name = 'Olive oil' WHERE id = %s", (category,))

    wait_for(lambda: pipeline.service_status()[1]["log_gaps"], 60, "the lost events to be reported")
    code, status = pipeline.service_status()
    assert code == 1 and "catalog_product" in status["log_gap_tables"]
    assert wait_for(lambda: consumer_log_gaps(pipeline), 10, "the log-gap metric") >= 1
    log = pipeline.consumer.output()
    assert "were lost by the broker" in log
    assert "strangler cdc reconcile --repair --table catalog_product" in log
    assert "catalog_product" in pipeline.differences()  # the loss is real: repair is needed

    report = pipeline.reconcile("--repair")
    assert report["drifted"] >= 30 and report["log_gaps_resolved"] >= 1
    pipeline.wait_converged(timeout=60)
    code, status = pipeline.service_status()
    assert (code, status["log_gaps"]) == (0, 0)
