"""Extract the catalog: its own service and database, kept in sync by change-data events.

Embedded wiring: Tansu (Kafka protocol, memory storage) on a free port, the catalog service
on its own SQLite file, the relay reading the monolith's outbox, the consumer applying to the
service. A snapshot backfills the catalog, then a product changed in the monolith shows up in
the service over HTTP, and reconcile reports zero drift.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from strangler.cdc.embedded import CONSUMER_OPTIONS, free_port, tansu_command, wait_listening
from strangler.demo.context import DemoContext, DemoError
from strangler.demo.monolith import listening_socket, wait_healthy

TITLE = "Extract the catalog service; sync it from the monolith with change-data events"
SERVICE_SETTINGS = "extracted.catalog_service.settings"
TABLES = ("catalog_category", "catalog_product", "catalog_productimage", "catalog_productattribute")
SYNC_TIMEOUT = 60.0


def service(*args: str) -> list[str]:
    return ["-m", "extracted.catalog_service.manage", *args, "--settings", SERVICE_SETTINGS]


def start_broker(ctx: DemoContext, pids: list[int]) -> str:
    port = free_port()
    process = ctx.start("tansu", tansu_command(port))
    pids.append(process.popen.pid)
    try:
        wait_listening(port, process.popen)
    except RuntimeError as error:
        raise DemoError(f"{error}:\n{process.log_tail()}") from error
    return f"127.0.0.1:{port}"


def start_service(ctx: DemoContext, pids: list[int], port: int = 0) -> str:
    """The catalog service under gunicorn (on `port`, or a free one); its Process in ctx.live."""
    sock = listening_socket(port)
    with sock:
        port = sock.getsockname()[1]
        argv = ctx.python(
            "-m", "gunicorn", "extracted.catalog_service.wsgi:application",
            "--env", f"DJANGO_SETTINGS_MODULE={SERVICE_SETTINGS}",
            "--bind", f"fd://{sock.fileno()}", "--workers", "1", "--graceful-timeout", "5",
        )  # fmt: skip
        process = ctx.start("catalog-service", argv, pass_fds=[sock.fileno()])
    pids.append(process.popen.pid)
    ctx.live["catalog-service"] = process
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return url


def count(url: str) -> int:
    return httpx.get(f"{url}/api/v1/products", params={"page_size": 1}, timeout=5).json()["count"]


def wait_until(predicate: Callable[[], object], what: str, timeout: float = SYNC_TIMEOUT) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what} (logs: see logs/)")


def run(ctx: DemoContext) -> None:
    if not ctx.monolith_url:
        raise DemoError("the cdc step needs the running monolith (run the monolith step first)")
    pids: list[int] = []  # every process this step starts, all stopped when the demo ends
    bootstrap = start_broker(ctx, pids)
    ctx.env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CDC_KAFKA_CONSUMER_OPTIONS": json.dumps(CONSUMER_OPTIONS),
            "CATALOG_DATABASE_URL": f"sqlite:///{ctx.work_dir / 'catalog_service.sqlite3'}",
            "CATALOG_VAR_DIR": str(ctx.work_dir / "catalog-var"),
            "CDC_SOURCE_DATABASE_URL": str(ctx.env["DATABASE_URL"]),
        }
    )
    ctx.log(f"Tansu broker on {bootstrap} (embedded Kafka protocol, memory storage)")
    ctx.run("catalog-migrate", ctx.python(*service("migrate", "--noinput")))
    pids.append(ctx.start("cdc-consumer", ctx.python(*service("cdc_consume"))).popen.pid)
    pids.append(ctx.start("cdc-relay", ctx.python("-m", "monolith.manage", "cdc_relay")).popen.pid)
    snapshot = ctx.run("cdc-snapshot", ctx.python(
        "-m", "strangler", "cdc", "--settings", "monolith.settings",
        "snapshot", *TABLES, "--restart"))  # fmt: skip
    for line in snapshot.strip().splitlines():
        ctx.log(f"snapshot {line}")
    catalog_url = start_service(ctx, pids)
    monolith_rows = count(ctx.monolith_url)
    took = wait_until(lambda: count(catalog_url) == monolith_rows, "the snapshot to arrive")
    ctx.log(f"catalog service {catalog_url}: {monolith_rows} products in sync after {took:.1f}s")

    stamp = time.strftime("%H:%M:%S")
    changed = ctx.run("change-product", ctx.python(
        "-m", "monolith.manage", "shell", "-c",
        "from decimal import Decimal\n"
        "from monolith.catalog.models import Product\n"
        "p = Product.objects.order_by('id').first()\n"
        f"p.name = 'Renamed in the monolith at {stamp}'\n"
        "p.price = p.price + Decimal('1.00')\n"
        "p.save()\n"
        "print(p.pk)\n"))  # fmt: skip
    pk = int(changed.strip().splitlines()[-1])
    path = f"/api/v1/products/{pk}"
    took = wait_until(
        lambda: httpx.get(f"{catalog_url}{path}", timeout=5).json().get("name", "").endswith(stamp),
        "the change to reach the catalog service",
    )
    in_monolith = httpx.get(f"{ctx.monolith_url}{path}", timeout=5).json()
    in_service = httpx.get(f"{catalog_url}{path}", timeout=5).json()
    ctx.log(f"product {pk} renamed in the monolith; GET {catalog_url}{path} shows "
            f"{in_service['name']!r} at {in_service['price']} "
            f"after {took * 1000:.0f} ms")  # fmt: skip
    if in_monolith != in_service:
        raise DemoError(
            f"{path} differs between monolith and service:\n{in_monolith}\n{in_service}"
        )
    ctx.log("same JSON from both")
    reconcile = ctx.python("-m", "strangler", "cdc", "--settings", SERVICE_SETTINGS,
                           "reconcile", "--json")  # fmt: skip
    report = json.loads(ctx.run("cdc-reconcile", reconcile))
    rows = sum(t["source_rows"] for t in report["tables"])
    ctx.log(f"reconcile: {rows} rows compared in {len(report['tables'])} tables, "
            f"{report['drifted']} drifted")  # fmt: skip
    ctx.facts["catalog_url"] = catalog_url
    ctx.facts["cdc"] = {
        "broker": bootstrap,
        "catalog_url": catalog_url,
        "products": monolith_rows,
        "changed_product": pk,
        "change_latency_ms": round(took * 1000),
        "drifted": report["drifted"],
        "pids": pids,
    }
