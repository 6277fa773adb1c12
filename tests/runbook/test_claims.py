"""One active run per route, and a run that finds its route moved by someone else pauses."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from strangler.control import open_store
from strangler.runbook import runs
from strangler.runbook.definition import parse
from strangler.runbook.engine import Engine
from strangler.runbook.sources import Environment
from strangler.runbook.store import RouteClaimed, RunStore
from tests.proxy.helpers import table
from tests.runbook.test_cli import cli

TWO_FLIPS = """
name = "two-flips"

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10

[[steps]]
id = "to-50"
action = "set_weight"
route = "products"
weight = 50
"""


def seeded(tmp_path: Path) -> Path:
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:9", "http://127.0.0.1:10"), "t", "seed")
    (tmp_path / "rb.toml").write_text(TWO_FLIPS)
    return routes


def test_a_second_run_on_the_same_route_is_refused_naming_the_first(tmp_path, run_store):
    routes = seeded(tmp_path)
    start = ("run", "rb.toml", "--routes", str(routes), "--store", run_store, "--detach")
    first = cli(*start, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    first_id = json.loads(first.stdout)["id"]

    second = cli(*start, cwd=tmp_path)
    assert second.returncode == 1
    assert f"route products is being moved by run {first_id} (two-flips" in second.stderr
    assert "Traceback" not in second.stderr
    # the built-in emergency runbook is refused too: it would race the run's own flips
    emergency = ("run", "rollback-route", "-p", "route=products", "--routes", str(routes))
    refused = cli(*emergency, "--store", run_store, "--detach", cwd=tmp_path)
    assert refused.returncode == 1 and f"run {first_id}" in refused.stderr
    store = RunStore(run_store)
    assert [r.id for r in store.runs()] == [first_id]  # nothing half-created

    aborted = cli("abort", first_id, "--store", run_store, "--why", "replaced", cwd=tmp_path)
    assert aborted.returncode == 0, aborted.stderr
    third = cli(*start, cwd=tmp_path)
    assert third.returncode == 0, third.stderr  # an aborted run frees its route
    assert len(store.runs()) == 2
    store.close()


def test_a_run_finding_its_route_changed_by_someone_else_pauses_instead_of_acting(tmp_path):
    routes = seeded(tmp_path)
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    env = Environment(routes=str(routes))
    runbook = parse(TWO_FLIPS, "rb.toml", {})
    run = runs.start(store, runbook, TWO_FLIPS, {}, env, "tester", "canary")

    def progress(line: str) -> None:
        if line.startswith("[2/2] to-50"):  # between the run's two flips, the on-call acts
            open_store(str(routes)).set_weight("products", 0, "oncall", "5xx: back to 0")

    paused = Engine(store, run.id, "tester", progress).run()
    assert paused.state == "paused"
    assert "route products was changed by someone else" in paused.reason
    assert "by oncall ('5xx: back to 0')" in paused.reason
    newest = open_store(str(routes)).history(1)[0]
    assert newest.who == "oncall" and float(newest.table.route("products").weight) == 0
    assert not [e for e in store.events(run.id, "action_started") if e.step == "to-50"]

    done = Engine(store, run.id, "tester").run()  # resuming is the human's decision
    assert done.state == "done", done.reason
    assert float(open_store(str(routes)).current().table.route("products").weight) == 50
    store.close()


def test_an_own_change_whose_record_was_lost_in_a_crash_is_not_someone_elses(tmp_path):
    routes = seeded(tmp_path)
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    env = Environment(routes=str(routes))
    run = runs.start(store, parse(TWO_FLIPS, "rb.toml", {}), TWO_FLIPS, {}, env, "t", "")
    # the runner set the weight, then died before recording action_done
    open_store(str(routes)).set_weight("products", 10, f"runbook {run.id} (t)", "to-10")
    store.record(run.id, "to-10", 1, "step_started", "t")
    store.record(run.id, "to-10", 1, "action_started", "t")
    done = Engine(store, run.id, "t").run()
    assert done.state == "done", done.reason
    store.close()


def test_two_runs_started_at_the_same_moment_one_wins(tmp_path, run_store):
    routes = seeded(tmp_path)
    env = Environment(routes=str(routes))
    runbook = parse(TWO_FLIPS, "rb.toml", {})
    barrier = threading.Barrier(4, timeout=20)
    outcomes: list[str] = []

    def start() -> None:
        store = RunStore(run_store)  # four runners opening a fresh store at once, too
        barrier.wait()
        try:
            runs.start(store, runbook, TWO_FLIPS, {}, env, "t", "")
            outcomes.append("started")
        except RouteClaimed as refused:
            outcomes.append(str(refused).split(":")[0])
        finally:
            store.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes)[-1] == "started" and outcomes.count("started") == 1, outcomes
    assert len(RunStore(run_store).runs()) == 1
