"""Reverse flow at cut-over: the service's writes reach the monolith once, and never echo."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monolith.catalog.models import Category, Product
from tests.cdc.conftest import CONSUMER_READY, MONOLITH, RELAY_READY
from tests.cdc.harness import Proc, query, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]


def outbox_rows(url: str) -> int:
    return query(url, "SELECT COUNT(*) FROM strangler_cdc_outbox")[0][0]


def test_service_write_reaches_the_monolith_exactly_once_without_echo(pipeline):
    shoes = Category.objects.using(MONOLITH).create(name="Shoes", slug="shoes")
    boot = Product.objects.using(MONOLITH).create(
        sku="BOOT-1", slug="boot", name="Boot", price=Decimal("80.00"), category=shoes
    )
    pipeline.wait_converged()

    # Cut-over: the service owns writes; its changes flow back to the monolith's tables.
    query(
        pipeline.service_url,
        "SELECT setval(pg_get_serial_sequence('catalog_product', 'id'), 100000)",
    )
    service_relay = Proc(
        ["extracted.catalog_service.manage", "cdc_relay"],
        pipeline.service_env,
        pipeline.tmp / "service-relay.log",
    ).start(ready=RELAY_READY)
    monolith_consumer = Proc(
        ["monolith.manage", "cdc_consume"],
        pipeline.monolith_env,
        pipeline.tmp / "monolith-consumer.log",
    ).start(ready=CONSUMER_READY)
    try:
        monolith_outbox = outbox_rows(pipeline.monolith_url)
        wrote = pipeline.service(
            "shell",
            "-c",
            "from decimal import Decimal\n"
            "from extracted.catalog_service.catalog.models import Product\n"
            f"boot = Product.objects.get(pk={boot.pk})\n"
            "boot.name = 'Boot (service)'\n"
            "boot.save()\n"
            f"Product.objects.create(sku='SANDAL-1', slug='sandal', name='Sandal', "
            f"price=Decimal('30.00'), category_id={shoes.pk})\n",
        )
        assert wrote.returncode == 0, wrote.stderr
        assert outbox_rows(pipeline.service_url) == 2

        wait_for(
            lambda: (
                Product.objects.using(MONOLITH).filter(sku="SANDAL-1").exists()
                and Product.objects.using(MONOLITH).get(pk=boot.pk).name == "Boot (service)"
            ),
            40,
            "the service's writes in the monolith",
        )
        sandal = Product.objects.using(MONOLITH).get(sku="SANDAL-1")
        assert sandal.pk == 100001 and sandal.price == Decimal("30.00")
        # No echo: applying them wrote no outbox row in the monolith, so nothing went back
        # to the service, whose outbox still holds exactly its own two changes.
        pipeline.wait_converged()
        assert outbox_rows(pipeline.monolith_url) == monolith_outbox
        assert outbox_rows(pipeline.service_url) == 2
    finally:
        assert service_relay.stop() == 0
        assert monolith_consumer.stop() == 0
