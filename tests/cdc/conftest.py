"""Fixtures: a Tansu broker, the monolith on its own PostgreSQL database, the catalog service.

The monolith runs in this process under an extra database alias (its ORM, bulk paths and raw
SQL are driven directly); the service, the relay and the consumer are real processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import httpx
import pytest
from django.core.management import call_command
from django.db import connections

from tests.cdc.harness import (
    Proc,
    Tansu,
    base_env,
    create_database,
    drop_database,
    free_port,
    query,
    run,
    wait_for,
)

MONOLITH = "cdc_monolith"
SERVICE_SETTINGS = "extracted.catalog_service.settings"
RELAY_READY, CONSUMER_READY = "cdc relay running", "cdc consumer running"
TABLES = {
    "catalog_category": "id, name, slug, parent_id, description, created_at, updated_at",
    "catalog_product": (
        "id, sku, slug, name, description, price, currency, is_active, category_id, "
        "created_at, updated_at"
    ),
    "catalog_productimage": "id, product_id, url, alt_text, position",
    "catalog_productattribute": "id, product_id, name, value",
}


def add_alias(alias: str, url: str) -> None:
    """Register a database alias at run time (pytest-django's test DB stays untouched)."""
    config = dj_database_url.parse(url)
    connections.settings[alias] = connections.configure_settings(
        {"default": dict(config), alias: dict(config)}
    )[alias]


def remove_alias(alias: str) -> None:
    if hasattr(connections._connections, alias):
        getattr(connections._connections, alias).close()
        delattr(connections._connections, alias)
    connections.settings.pop(alias, None)


@pytest.fixture(scope="module")
def broker() -> Iterator[Tansu]:
    tansu = Tansu().start()
    yield tansu
    tansu.stop()


@dataclass
class Pipeline:
    """Monolith DB -> relay -> Tansu -> consumer -> service DB, all real."""

    broker: Tansu
    tmp: Path
    monolith_url: str
    service_url: str
    monolith_env: dict[str, str]
    service_env: dict[str, str]
    relay: Proc
    consumer: Proc
    relay_metrics: str
    consumer_metrics: str

    def metric(self, url: str, name: str) -> float | None:
        """One sample of a Prometheus text endpoint (None while it is not there)."""
        try:
            text = httpx.get(url, timeout=2).text
        except httpx.TransportError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def service(self, *args: str, timeout: float = 120):
        return run(["extracted.catalog_service.manage", *args], self.service_env, timeout)

    def rows(self, url: str, table: str) -> list[tuple]:
        return query(url, f"SELECT {TABLES[table]} FROM {table} ORDER BY id")

    def differences(self) -> dict[str, int]:
        """Per table, how many rows differ between monolith and service (0 = in sync)."""
        found = {}
        for table in TABLES:
            source = set(self.rows(self.monolith_url, table))
            target = set(self.rows(self.service_url, table))
            if source != target:
                found[table] = len(source ^ target)
        return found

    def wait_converged(self, timeout: float = 40) -> None:
        wait_for(lambda: not self.differences(), timeout, "service to match the monolith", 0.3)

    def reconcile(self, *args: str) -> dict:
        """`strangler cdc reconcile --json` for the service; exit 1 exactly when drifted."""
        result = run(
            [
                "strangler",
                "cdc",
                "--settings",
                "extracted.catalog_service.settings",
                "reconcile",
                "--json",
                *args,
            ],
            self.service_env,
        )
        report = json.loads(result.stdout)
        assert result.returncode == (1 if report["drifted"] else 0), result.stderr
        return report

    def dead_letters(self) -> list[dict]:
        """The service's pending dead letters, as `cdc_deadletters list --json` gives them."""
        listed = self.service("cdc_deadletters", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        return json.loads(listed.stdout)

    def service_status(self) -> tuple[int, dict]:
        """`strangler cdc status --json` in the service: (exit code, figures)."""
        env = self.service_env | {"DJANGO_SETTINGS_MODULE": SERVICE_SETTINGS}
        result = run(["strangler", "cdc", "status", "--json"], env)
        return result.returncode, json.loads(result.stdout)

    def monolith_status(self, *args: str) -> dict:
        """`strangler cdc status --json` in the monolith (the capturing side)."""
        env = self.monolith_env | {"DJANGO_SETTINGS_MODULE": "monolith.settings"}
        result = run(["strangler", "cdc", "status", "--json", *args], env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def outbox_backlog(self) -> int:
        """Outbox rows the relay has not published yet."""
        sql = "SELECT COUNT(*) FROM strangler_cdc_outbox WHERE published_at IS NULL"
        return query(self.monolith_url, sql)[0][0]


@pytest.fixture(scope="module")
def pipeline(broker, tmp_path_factory, django_db_blocker) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("cdc")
    monolith_url = create_database("strangler_cdc_mono")
    service_url = create_database("strangler_catalog_service")
    env = base_env(tmp, broker.bootstrap)
    monolith_env = env | {"DATABASE_URL": monolith_url}
    service_env = env | {
        "CATALOG_DATABASE_URL": service_url,
        "CDC_SOURCE_DATABASE_URL": monolith_url,
        "CDC_MAX_ATTEMPTS": "2",
    }
    with django_db_blocker.unblock():
        add_alias(MONOLITH, monolith_url)
        call_command("migrate", database=MONOLITH, verbosity=0)
    migrated = run(["extracted.catalog_service.manage", "migrate", "-v0"], service_env)
    assert migrated.returncode == 0, migrated.stderr
    relay_port, consumer_port = free_port(), free_port()
    relay = Proc(
        ["monolith.manage", "cdc_relay", "--metrics-port", str(relay_port), "--log-json"],
        monolith_env,
        tmp / "relay.log",
    ).start(ready=RELAY_READY)
    consumer = Proc(
        [
            "extracted.catalog_service.manage",
            "cdc_consume",
            "--metrics-port",
            str(consumer_port),
            "--log-json",
        ],
        service_env,
        tmp / "consumer.log",
    ).start(ready=CONSUMER_READY)
    pipe = Pipeline(
        broker, tmp, monolith_url, service_url, monolith_env, service_env, relay, consumer,
        f"http://127.0.0.1:{relay_port}/metrics", f"http://127.0.0.1:{consumer_port}/metrics",
    )  # fmt: skip
    try:
        with django_db_blocker.unblock():
            yield pipe
    finally:
        relay.stop()
        consumer.stop()
        with django_db_blocker.unblock():
            remove_alias(MONOLITH)
        drop_database(monolith_url)
        drop_database(service_url)
