"""Approve and abort, as functions (strangler.runbook.runs) and as commands."""

from __future__ import annotations

import json

import pytest

from strangler.runbook import runs
from strangler.runbook.definition import parse
from strangler.runbook.engine import Engine
from strangler.runbook.report import render, status
from strangler.runbook.sources import Environment
from strangler.runbook.store import RunStore
from tests.runbook.test_claims import TWO_FLIPS, seeded
from tests.runbook.test_cli import cli

FAILING = """
name = "failing"

[[steps]]
id = "health"
action = "check"
gates = [{ gate = "service_healthy", route = "products" }]
interval = 0.2
deadline = 1

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10
"""


def test_approving_a_step_without_an_approval_gate_is_refused_with_exit_2(tmp_path):
    routes = seeded(tmp_path)
    store = str(tmp_path / "runs.sqlite3")
    made = cli("run", "rb.toml", "--routes", str(routes), "--store", store, "--detach", "--json",
               cwd=tmp_path)  # fmt: skip
    run_id = json.loads(made.stdout)["id"]
    refused = cli("approve", run_id, "--store", store, "--why", "looks fine", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"strangler runbook: error: step to-10 of run {run_id} has no approval gate: nothing to "
        "approve (only a step with an `approval` gate waits for a human)"
    ]
    assert RunStore(store).events(run_id, "approved") == []  # nothing recorded


def test_abort_is_a_function_and_an_aborted_runs_failed_step_shows_failed(tmp_path):
    routes = seeded(tmp_path)
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    runbook = parse(FAILING, "failing.toml", {})
    env = Environment(routes=str(routes))
    run = runs.start(store, runbook, FAILING, {}, env, "t", "")
    assert Engine(store, run.id, "t").run().state == "paused"  # the health gate failed
    with pytest.raises(runs.Refused, match="has no approval gate"):
        runs.approve(store, run.id, "alice", "ok")
    aborted = runs.abort(store, run.id, "alice", "service not deployed")
    assert (aborted.state, aborted.reason) == ("aborted", "aborted by alice: service not deployed")
    report = status(runbook, aborted, store.events(run.id))
    assert [s["state"] for s in report["steps"]] == ["failed", "pending"]
    assert " FAIL  1. health" in render(report)
    with pytest.raises(runs.Refused, match="is aborted; nothing to abort"):
        runs.abort(store, run.id, "alice", "again")
    again = runs.start(store, parse(TWO_FLIPS, "rb.toml", {}), TWO_FLIPS, {}, env, "t", "")
    runs.abort(store, again.id, "bob", "postponed")  # aborted before it failed anywhere
    report = status(parse(TWO_FLIPS, "rb.toml", {}), store.get(again.id), store.events(again.id))
    assert [s["state"] for s in report["steps"]] == ["aborted", "pending"]
    store.close()
