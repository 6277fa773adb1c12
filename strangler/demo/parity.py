"""Parity before the weight moves: shadow /api/v1/products onto the catalog service, compare.

A proxy at weight 0 shadows every list and detail request onto the extracted catalog (the
candidate) and, for noise, a second call to the monolith. Real noise is learned, not
configured: the Date header differs whenever two calls straddle a second. A real
representational difference is handled by configuration: the read-only service answers
`Allow: GET, HEAD, OPTIONS` and `Vary: Accept` where the monolith (with writes and
session cookies) says `Allow: GET, POST, ...` and `Vary: Accept, Cookie` (docs/parity.md).
Needs the cdc step (the running catalog service); leaves `ctx.facts["parity"]`.
"""

from __future__ import annotations

import json
import time

import httpx

from strangler.demo.context import DemoContext, DemoError
from strangler.demo.proxy import free_port, wait_for_version
from strangler.parity import open_store, summary

TITLE = "Parity tests: shadow /api/v1/products onto the catalog service, report and gate"
PAGES = 60  # list requests (pages of 5) and as many detail requests
GATE, MIN_SAMPLES = 99.5, 100
COMPARE = {
    # Caching semantics matter to a catalog behind a CDN, so Date, Vary and Allow are compared
    # besides the defaults.
    "headers": ["content-type", "location", "cache-control", "set-cookie", "date", "vary",
                "allow"],
    # The service is read-only and cookie-less: it allows fewer methods and varies on fewer
    # headers, on purpose. Clients of these GET endpoints act on neither.
    "ignore": ["header:allow", "header:vary"],
}  # fmt: skip


def _table(monolith: str, catalog: str) -> dict[str, object]:
    return {
        "default_backend": "monolith",
        "backends": {"monolith": {"url": monolith}, "catalog": {"url": catalog}},
        "routes": [{"id": "products", "prefix": "/api/v1/products", "methods": ["GET", "HEAD"],
                    "monolith": "monolith", "service": "catalog", "weight": 0,
                    "sticky": ["header:X-User-ID", "client_address"],
                    "shadow": {"percent": 100, "noise_percent": 100, "compare": COMPARE}}],
    }  # fmt: skip


def _browse(proxy_url: str) -> int:
    """Shoppers through the proxy: list pages and product details; returns the failures."""
    failed = 0
    with httpx.Client(base_url=proxy_url, timeout=10) as client:
        for n in range(PAGES):
            for path in (f"/api/v1/products?page={n % 20 + 1}&page_size=5",
                         f"/api/v1/products/{n % 100 + 1}"):  # fmt: skip
                answer = client.get(path, headers={"X-User-ID": f"shopper-{n}"})
                failed += answer.status_code != 200
    return failed


def _wait_for_samples(store_path: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = open_store(store_path)
        try:
            if summary(store, "products", since=0).samples >= count:
                return
        finally:
            store.close()
        time.sleep(0.2)
    raise DemoError(f"fewer than {count} shadowed pairs compared after {timeout:.0f}s "
                    "(see logs/parity-proxy.log)")  # fmt: skip


def run(ctx: DemoContext) -> None:
    catalog_url = str(ctx.facts.get("catalog_url") or "")
    if not ctx.monolith_url or not catalog_url:
        raise DemoError("the parity step needs the monolith and the catalog service "
                        "(run the monolith and cdc steps first)")  # fmt: skip
    work = ctx.work_dir / "parity"
    work.mkdir(exist_ok=True)
    config, store = work / "routes.json", str(work / "parity.sqlite3")
    config.write_text(json.dumps(_table(ctx.monolith_url, catalog_url), indent=2))
    port, admin_port = free_port(), free_port()
    ctx.start("parity-proxy", ctx.python(
        "-m", "strangler", "proxy", "--config", str(config), "--listen", f"127.0.0.1:{port}",
        "--admin", f"127.0.0.1:{admin_port}", "--access-log", "off",
        "--parity-store", store))  # fmt: skip
    wait_for_version(f"http://127.0.0.1:{admin_port}", 1, timeout=15)
    ctx.log(f"proxy 127.0.0.1:{port} at weight 0, shadowing 100% of /api/v1/products onto "
            f"{catalog_url} (noise: a second monolith call)")  # fmt: skip
    for name, url in (("monolith", ctx.monolith_url), ("catalog", catalog_url)):
        head = httpx.get(f"{url}/api/v1/products/1", timeout=10).headers
        ctx.log(f"{name:8} answers Allow: {head.get('allow')!r}, Vary: {head.get('vary')!r}")
    ctx.log("configured: ignore header:allow and header:vary (the read-only, cookie-less "
            "service on purpose); nothing configured for noise")  # fmt: skip
    failed = _browse(f"http://127.0.0.1:{port}")
    if failed:
        raise DemoError(f"{failed} shopper requests failed through the shadowing proxy")
    _wait_for_samples(store, 2 * PAGES)
    reconcile = ctx.run("parity-reconcile", ctx.python(
        "-m", "strangler", "cdc", "--settings", "extracted.catalog_service.settings",
        "reconcile", "--json"))  # fmt: skip
    (work / "reconcile.json").write_text(reconcile)
    ctx.run("parity-record-data", ctx.python(
        "-m", "strangler", "parity", "record-data", "--route", "products", "--store", store,
        str(work / "reconcile.json")))  # fmt: skip
    report = ctx.python("-m", "strangler", "parity", "report", "--route", "products",
                        "--store", store, "--since", "1h")  # fmt: skip
    text = ctx.run("parity-report", report)
    gate = ctx.run("parity-gate", [*report, "--gate", str(GATE), "--min-samples",
                                   str(MIN_SAMPLES), "--json"])  # fmt: skip
    ctx.run("parity-html", [*report, "-f", "html", "-o", str(work / "report.html")])
    for line in text.rstrip().splitlines():
        ctx.log(line)
    outcome = json.loads(gate)
    ctx.log(f"gate --gate {GATE} --min-samples {MIN_SAMPLES}: {outcome['gate']['line']}")
    ctx.log(f"HTML report: {work / 'report.html'}")
    route = outcome["routes"][0]
    ctx.facts["parity"] = {"store": store, "samples": route["samples"],
                           "parity": route["parity"], "raw_parity": route["raw_parity"],
                           "gate": outcome["gate"]["outcome"],
                           "report": str(work / "report.html")}  # fmt: skip
