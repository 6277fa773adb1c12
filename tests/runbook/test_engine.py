"""The engine against the real proxy: gates on its metrics, automatic rollback, resume."""

from __future__ import annotations

import time

import httpx

from strangler.runbook.definition import parse
from strangler.runbook.engine import Engine
from strangler.runbook.report import status
from strangler.runbook.sources import Environment
from strangler.runbook.store import RunStore
from tests.proxy.helpers import Upstream
from tests.runbook.conftest import Shoppers, Stack

GATES = """
gates = [
  { gate = "error_rate", route = "products", max_delta = 0.05, min_requests = 15 },
  { gate = "breaker_closed", route = "products" },
]
bake = 1.5
interval = 0.3
deadline = 30
on_fail = "rollback"
"""
CANARY = f"""
name = "canary"

[[steps]]
id = "canary-20"
action = "set_weight"
route = "products"
weight = 20
{GATES}

[[steps]]
id = "canary-60"
action = "set_weight"
route = "products"
weight = 60
{GATES}
"""


def start(store: RunStore, stack: Stack) -> str:
    runbook = parse(CANARY, "canary.toml", {})
    env = Environment(routes=str(stack.routes), metrics=(stack.metrics_url,))
    run = store.create(
        runbook.name,
        "canary.toml",
        CANARY,
        {},
        env.to_json(),
        runbook.steps[0].id,
        "tester",
        "test the canary",
    )
    return run.id


def breaker_closed(stack: Stack) -> bool:
    text = httpx.get(stack.metrics_url, timeout=5).text
    return 'strangler_proxy_breaker_state{backend="catalog"} 0' in text


def test_a_failing_gate_rolls_back_to_the_last_passed_weight_and_resume_goes_on(
    stack: Stack, run_store: str
):
    store = RunStore(run_store)
    run_id = start(store, stack)
    shoppers = Shoppers(stack.proxy.url)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("[2/2] canary-60"):
            stack.catalog.kill()  # the fault: the service dies while 60% is baking

    try:
        paused = Engine(store, run_id, "tester", progress, sleep=time.sleep).run()
        assert paused.state == "paused", "\n".join(lines)
        assert stack.weight() == 20  # back to the last weight whose gates passed
        newest = stack_history(stack)[0]
        assert newest.who == f"runbook {run_id} (tester)"
        assert "automatic rollback" in newest.why and "canary-60 failed" in newest.why
        report = status(parse(CANARY, "canary.toml", {}), store.get(run_id), store.events(run_id))
        assert [s["state"] for s in report["steps"]] == ["passed", "failed"]
        failing = {g["gate"]: g for g in report["steps"][1]["gates"]}
        assert "fail" in {failing["error_rate"]["outcome"], failing["breaker_closed"]["outcome"]}
        assert failing["error_rate"]["source"] == f"metrics {stack.metrics_url}"
        rolled = [e for e in store.events(run_id) if e.kind == "rolled_back"]
        assert [e.data["weight"] for e in rolled] == [20]

        stack.catalog = Upstream("catalog", port=stack.catalog.port)  # the fix
        deadline = time.monotonic() + 20
        while not breaker_closed(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
        done = Engine(store, run_id, "tester", lines.append).run()
        assert done.state == "done", "\n".join(lines)
        assert stack.weight() == 60
        attempts = [
            e.attempt
            for e in store.events(run_id)
            if e.kind == "step_started" and e.step == "canary-60"
        ]
        assert attempts == [1, 2]
    finally:
        shoppers.finish()
        store.close()
    assert set(shoppers.answers) == {200}, shoppers.answers  # GETs fell back: no user saw it


def stack_history(stack: Stack) -> list:
    from strangler.control import open_store

    return open_store(str(stack.routes)).history(5)


QUIET = """
name = "quiet"

[[steps]]
id = "canary-10"
action = "set_weight"
route = "products"
weight = 10
gates = [{ gate = "error_rate", route = "products", max_delta = 0.01, min_requests = 10 }]
bake = 0.5
interval = 0.3
deadline = 3
on_fail = "rollback"
"""


def test_no_traffic_waits_until_the_deadline_then_fails_never_passes(stack: Stack, tmp_path):
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    env = Environment(routes=str(stack.routes), metrics=(stack.metrics_url,))
    run = store.create("quiet", "quiet.toml", QUIET, {}, env.to_json(), "canary-10", "t", "")
    paused = Engine(store, run.id, "tester").run()
    rounds = [e.data["evaluations"][0] for e in store.events(run.id, "gates")]
    store.close()
    assert paused.state == "paused"
    assert "deadline 3s reached: error_rate inconclusive" in paused.reason
    assert len(rounds) > 1 and {r["outcome"] for r in rounds} == {"inconclusive"}
    assert rounds[-1]["samples"] == {"service_requests": 0, "monolith_requests": 0}
    assert stack.weight() == 0  # the failed step was rolled back
