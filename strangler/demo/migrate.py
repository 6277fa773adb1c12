"""Migrate /api/v1/products with the built-in `extract-context` runbook, a fault included.

The runbook checks the CDC sync, then moves the route 5% -> 25%. At 25% the demo crashes the
catalog service: the error-rate gate fails, the engine rolls the route back to 5% through the
route store and pauses the run. The demo restarts the service (the fix) and resumes: 25% ->
50% -> 100%, write ownership flipped (reverse CDC; a write in the service reaches the
monolith), the route retired, and the retire report printed. The client started by the proxy
step runs all along; its failures are counted, split by whether the fault window holds them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import httpx

from strangler.demo.cdc import SERVICE_SETTINGS, TABLES, service, start_service, wait_until
from strangler.demo.context import DemoContext, DemoError, Process
from strangler.demo.proxy import Shoppers
from strangler.runbook import builtin, runs
from strangler.runbook.engine import Engine
from strangler.runbook.metrics import parse
from strangler.runbook.report import status
from strangler.runbook.sources import Environment
from strangler.runbook.store import RunStore

TITLE = "Migrate /api/v1/products with the extract-context runbook (fault, rollback, resume)"
FAULT_STEP = "canary-25"
# The catalog's seams the team keeps for now, each to be cut through an API later; the
# preflight's `strangler analyze --check` refuses any other dependency of the catalog.
KEPT_SEAMS = (  # (context, its app)
    ("customers", "customers"),
    ("inventory", "inventory"),
    ("notifications", "notifications"),
    ("orders", "orders"),
    ("reporting", "reporting"),
    ("shared-kernel", "core"),
)
BOUNDARIES = (
    '[[context]]\nname = "catalog"\napps = ["catalog"]\n'
    f"depends_on = {json.dumps([name for name, _ in KEPT_SEAMS])}\n"
    + "".join(f'\n[[context]]\nname = "{name}"\napps = ["{app}"]\n' for name, app in KEPT_SEAMS)
)
PARAMS = {
    "route": "products",
    "tables": ",".join(TABLES),
    "bake_s": "4",
    "min_requests": "10",
    # p99 over 10-40 requests is about the slowest one, and a freshly restarted gunicorn on a
    # busy 2-core machine has seen 3.6x the monolith's; the built-in default is 2.
    "max_p99_ratio": "8",
    "shadow_percent": "50",
    "min_parity_samples": "50",
}


class Story:
    """The demo's hands in the run: the fault at canary-25, the reverse flow at flip-writes."""

    def __init__(self, ctx: DemoContext, store: RunStore, run_id: str) -> None:
        self.ctx = ctx
        self.store = store
        self.run_id = run_id
        self.fault: list[float] = []  # [start, end] of the fault, monotonic seconds
        self.flipped_ms = 0

    def progress(self, line: str) -> None:
        """The engine's progress: step lines and failures are shown, the rest is in status."""
        if line.startswith("[") or "FAILED" in line or "rolled back" in line:
            self.ctx.log(line.strip())
        if line.startswith("[") and f"] {FAULT_STEP}:" in line and not self.fault:
            self.crash_service()
        if line.startswith("[") and "] flip-writes:" in line:
            self.flip_writes()

    def crash_service(self) -> None:
        process: Process = self.ctx.live["catalog-service"]
        os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()
        self.fault.append(time.monotonic())
        self.ctx.log("FAULT: the catalog service crashed (SIGKILL) while 25% of users are on it")

    def repair(self) -> None:
        """Restart the service on its port, then wait for the proxies' breaker to close."""
        port = int(str(self.ctx.facts["catalog_url"]).rsplit(":", 1)[1])
        start_service(self.ctx, [], port)
        admin = str(self.ctx.facts["proxy"]["admin_url"])  # type: ignore[index]

        def closed() -> bool:
            text = httpx.get(f"{admin}/metrics", timeout=5).text
            return parse(text).breaker.get("catalog") == 0

        took = wait_until(closed, "the catalog breaker to close", timeout=30)
        self.fault.append(time.monotonic())
        self.ctx.log(
            f"fix: catalog service restarted on port {port}; its breaker closed after "
            f"{took:.1f}s (health probe)"
        )

    def flip_writes(self) -> None:
        """Start the reverse flow, show a service write reaching the monolith, then approve."""
        ctx = self.ctx
        ctx.start("service-relay", ctx.python(*service("cdc_relay")))
        ctx.start("monolith-consumer", ctx.python("-m", "monolith.manage", "cdc_consume"))
        stamp = time.strftime("%H:%M:%S")
        out = ctx.run(
            "service-write",
            ctx.python(
                *service(
                    "shell",
                    "-c",
                    "from extracted.catalog_service.catalog.models import Product\n"
                    "p = Product.objects.order_by('id').last()\n"
                    f"p.name = 'Renamed by the catalog service at {stamp}'\n"
                    "p.save()\n"
                    "print(p.pk)\n",
                )
            ),
        )
        pk = int(out.strip().splitlines()[-1])
        url = f"{ctx.monolith_url}/api/v1/products/{pk}"
        took = wait_until(
            lambda: httpx.get(url, timeout=5).json().get("name", "").endswith(stamp),
            "the service's write to reach the monolith",
        )
        self.flipped_ms = round(took * 1000)
        ctx.log(
            f"write ownership: product {pk} renamed in the service reached the monolith's "
            f"database after {self.flipped_ms} ms (reverse CDC, no echo)"
        )
        self.store.record(
            self.run_id,
            "flip-writes",
            0,
            "approved",
            "demo",
            "reverse CDC running; a service write reached the monolith",
        )


def gate_summary(report: dict[str, Any]) -> list[str]:
    """One line per step: its state, attempts and the final reading of each gate."""
    lines = []
    for step in report["steps"]:
        tries = f" after {step['attempts']} attempts" if step["attempts"] > 1 else ""
        lines.append(f"  {step['id']:<14} {step['state']}{tries}")
        for failure in step["failures"]:
            lines.append(f"    attempt {failure['attempt']} failed:")
            lines += [
                f"      {g['outcome']:<12} {g['gate']}: {g['reason']}" for g in failure["gates"]
            ]
        if step["failures"]:
            lines.append(f"    attempt {step['attempts']}:")
        for gate in step["gates"]:
            lines.append(f"      {gate['outcome']:<12} {gate['gate']}: {gate['reason']}")
    return lines


def run(ctx: DemoContext) -> None:
    shoppers: Shoppers | None = ctx.live.get("shoppers")
    if shoppers is None or "catalog_url" not in ctx.facts:
        raise DemoError("the migrate step needs the cdc and proxy steps before it")
    proxy: dict[str, Any] = ctx.facts["proxy"]  # type: ignore[assignment]
    added = {k: v for k, v in ctx.env.items() if os.environ.get(k) != v}
    env = Environment(
        routes=proxy["config"],
        metrics=(f"{proxy['admin_url']}/metrics",),
        source_settings="monolith.settings",
        target_settings=SERVICE_SETTINGS,
        monolith_source=str(ctx.reference / "monolith"),
        parity_store=proxy["parity_store"],
        process_env=added,
        cwd=str(ctx.work_dir),  # like the demo's own processes: not the user's project folder
    )
    boundaries = ctx.work_dir / "boundaries.toml"
    boundaries.write_text(BOUNDARIES)
    params = PARAMS | {"boundaries": str(boundaries)}
    text, _ = builtin.source("extract-context")
    runbook = builtin.resolve("extract-context", params)
    store = RunStore(str(ctx.work_dir / "runs.sqlite3"))
    ctx.stack.callback(store.close)
    run_ = runs.start(
        store, runbook, text, params, env, "demo", "strangle the catalog out of the monolith"
    )
    ctx.log(
        f"run {run_.id} of extract-context ({len(runbook.steps)} steps), store "
        f"{store.location}; `strangler runbook status {run_.id} --store {store.location}`"
    )
    story = Story(ctx, store, run_.id)
    paused = Engine(store, run_.id, "demo", story.progress).run()
    if paused.state != "paused" or not story.fault:
        raise DemoError(
            f"the run stopped at {paused.step or 'its end'} before the fault "
            f"({paused.state}): {paused.reason}"
        )
    ctx.log(f"run paused: {paused.reason}")
    story.repair()
    ctx.log(f"resume: `strangler runbook resume {run_.id}`")
    done = Engine(store, run_.id, "demo", story.progress).run()
    report = status(runbook, done, store.events(run_.id))
    if done.state != "done":
        for line in gate_summary(report):
            ctx.log(line)
        raise DemoError(f"the run stopped at {done.step}: {done.reason}")
    shoppers.finish()
    client = client_summary(shoppers, story.fault)
    metrics = parse(httpx.get(f"{proxy['admin_url']}/metrics", timeout=5).text)
    client["fallbacks"] = int(metrics.fallbacks.get("products", 0))
    ctx.log("summary, each step with its gate readings:")
    for line in gate_summary(report):
        ctx.log(line)
    retired = next(
        e for e in store.events(run_.id) if e.kind == "action_done" and e.step == "retire-report"
    )
    unreachable = retired.data["result"]["unreachable_endpoints"]
    ctx.log(
        f"retire report: no longer reachable in the monolith: {', '.join(unreachable)}; "
        f"capture triggers to drop or reverse: {len(TABLES)} tables"
    )
    ctx.log(
        f"client: {client['requests']} requests, {client['monolith']} answered by the "
        f"monolith, {client['catalog']} by the catalog; {client['failed_outside_fault']} "
        f"failed outside the fault, {client['failed_in_fault']} during it; the proxy "
        f"answered {client['fallbacks']} requests the catalog failed from the monolith"
    )
    if client["failed_outside_fault"]:
        raise DemoError(
            f"{client['failed_outside_fault']} requests failed outside the fault, "
            f"e.g. {shoppers.failed[0][1]}"
        )
    ctx.facts["runbook"] = {
        "run": run_.id,
        "store": store.location,
        "state": done.state,
        "steps": {
            s["id"]: {"state": s["state"], "attempts": s["attempts"]} for s in report["steps"]
        },
        "rollbacks": [e.data for e in store.events(run_.id) if e.kind == "rolled_back"],
        "reverse_cdc_ms": story.flipped_ms,
        "unreachable_endpoints": unreachable,
        "client": client,
    }


def client_summary(shoppers: Shoppers, fault: list[float]) -> dict[str, int]:
    """The client's totals; failures split by whether they fell inside the fault window."""
    start, end = fault[0], fault[-1]
    inside = sum(1 for at, _ in shoppers.failed if start <= at <= end)
    return {
        "requests": sum(shoppers.totals.values()),
        "monolith": shoppers.totals["monolith"],
        "catalog": shoppers.totals["catalog"],
        "failed_in_fault": inside,
        "failed_outside_fault": len(shoppers.failed) - inside,
    }
