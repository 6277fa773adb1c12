"""The shadow step and parity gate against the real proxy comparing real answers."""

from __future__ import annotations

from strangler.runbook.engine import Engine
from strangler.runbook.sources import Environment
from strangler.runbook.store import RunStore
from tests.runbook.conftest import Shoppers, Stack

SHADOW = """
name = "parity-first"

[[steps]]
id = "shadow"
action = "set_shadow"
route = "products"
percent = 100
gates = [{ gate = "parity", route = "products", min_parity = 99, min_samples = 20 }]
bake = 1
interval = 0.5
deadline = 12

[[steps]]
id = "canary"
action = "set_weight"
route = "products"
weight = 5
"""


def test_a_service_answering_differently_is_stopped_before_any_user_moves(stack: Stack, tmp_path):
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    env = Environment(
        routes=str(stack.routes), metrics=(stack.metrics_url,), parity_store=str(stack.parity)
    )
    run = store.create("parity-first", "parity.toml", SHADOW, {}, env.to_json(), "shadow", "t", "")
    shoppers = Shoppers(stack.proxy.url)
    try:
        lines: list[str] = []
        paused = Engine(store, run.id, "tester", lines.append).run()
    finally:
        shoppers.finish()
    assert paused.state == "paused", "\n".join(lines)
    assert stack.weight() == 0  # nobody was moved to the service
    rounds = [e.data["evaluations"][0] for e in store.events(run.id, "gates")]
    last = rounds[-1]
    assert last["outcome"] == "fail"  # the upstreams name themselves: the answers differ
    assert last["samples"]["comparisons"] >= 20
    assert last["readings"]["parity"] < 99
    assert last["source"] == f"parity store {stack.parity}"
    assert "deadline 12s reached" in paused.reason
    assert set(shoppers.answers) == {200}  # shadowing never touched a client's answer
    store.close()
