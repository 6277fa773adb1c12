"""kill -9 at any moment, then resume: no completed action repeated, none skipped, one runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from strangler.control import open_store
from strangler.runbook.store import LeaseHeld, RunStore
from tests.proxy.helpers import table
from tests.runbook.test_cli import cli

LEASE = "1.5"
RUNBOOK = """
name = "crashy"

[[steps]]
id = "first"
action = "command"
argv = ["sh", "-c", "echo first >> actions.log"]

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10

[[steps]]
id = "bake"
action = "wait"
bake = 3

[[steps]]
id = "slow"
action = "command"
argv = ["sh", "-c", "echo slow-start >> actions.log; sleep 2; echo slow-end >> actions.log"]

[[steps]]
id = "to-30"
action = "set_weight"
route = "products"
weight = 30
"""


def runner(run_id: str, store: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strangler",
            "runbook",
            "resume",
            run_id,
            "--store",
            store,
            "--lease-seconds",
            LEASE,
        ],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def wait_for_event(store: str, run_id: str, step: str, kind: str, timeout: float = 30) -> None:
    runs = RunStore(store)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.step == step and e.kind == kind for e in runs.events(run_id)):
                return
            time.sleep(0.05)
        raise AssertionError(f"no {kind} of {step} within {timeout}s")
    finally:
        runs.close()


def detached(tmp_path: Path, text: str, store: str, *extra: str) -> tuple[Path, str]:
    """A route table at weight 0 and a run of `text` created but not driven: (routes, run id)."""
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:9", "http://127.0.0.1:10"), "t", "seed")
    (tmp_path / "runbook.toml").write_text(text)
    created = cli(
        "run",
        "runbook.toml",
        "--routes",
        str(routes),
        "--store",
        store,
        "--detach",
        "--json",
        *extra,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    return routes, json.loads(created.stdout)["id"]


def test_killed_mid_step_resume_repeats_no_completed_action_and_skips_none(tmp_path, run_store):
    routes, run_id = detached(tmp_path, RUNBOOK, run_store, "--allow-commands")

    first = runner(run_id, run_store, tmp_path)
    wait_for_event(run_store, run_id, "bake", "action_done")
    second = cli("resume", run_id, "--store", run_store, cwd=tmp_path)
    assert second.returncode == 1  # a second runner is refused while the first one lives
    assert "is being run by" in second.stderr

    os.killpg(first.pid, signal.SIGKILL)  # mid-bake, with everything it started
    first.wait()
    runs = RunStore(run_store)
    with pytest.raises(LeaseHeld):  # the lease outlives its holder's crash until it expires
        runs.acquire(run_id, "someone-else", 1.0)
    runs.close()

    time.sleep(float(LEASE) + 0.2)
    again = runner(run_id, run_store, tmp_path)
    wait_for_event(run_store, run_id, "slow", "action_started")
    time.sleep(0.5)
    os.killpg(again.pid, signal.SIGKILL)  # in the middle of the command
    again.wait()
    time.sleep(float(LEASE) + 0.2)

    interrupted = cli("resume", run_id, "--store", run_store, cwd=tmp_path)
    assert interrupted.returncode == 1  # an interrupted command is not re-run on its own
    status = json.loads(cli("status", run_id, "--store", run_store, "--json", cwd=tmp_path).stdout)
    assert status["state"] == "paused" and "interrupted" in status["reason"]

    finished = cli("resume", run_id, "--store", run_store, "--why", "checked the log", cwd=tmp_path)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    log = (tmp_path / "actions.log").read_text().split()
    assert log == ["first", "slow-start", "slow-start", "slow-end"]  # re-run after a human check
    weights = [v.table.route("products").weight for v in open_store(str(routes)).history(10)]
    assert [float(w) for w in reversed(weights)] == [0, 10, 30]  # each flip exactly once
    status = json.loads(cli("status", run_id, "--store", run_store, "--json", cwd=tmp_path).stdout)
    assert status["state"] == "done"
    assert [s["state"] for s in status["steps"]] == ["passed"] * 5


BAKING = """
name = "baking"

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10

[[steps]]
id = "watch"
action = "wait"
bake = 60
"""


def while_running(
    tmp_path: Path, store: str, run_id: str, step: str, kind: str, *action: str
) -> int:
    """With a runner on the run, once `step` recorded `kind`, run `strangler runbook ACTION`;
    the runner's exit code."""
    driving = runner(run_id, store, tmp_path)
    try:
        wait_for_event(store, run_id, step, kind)
        done = cli(*action, run_id, "--store", store, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return driving.wait(timeout=30)
    finally:
        if driving.poll() is None:
            os.killpg(driving.pid, signal.SIGKILL)


def test_a_manual_rollback_undoes_the_latest_flip_and_pauses_there(tmp_path):
    store = str(tmp_path / "runs.sqlite3")
    routes, run_id = detached(tmp_path, BAKING, store)
    rollback = ("rollback", "--who", "oncall", "--why", "p99 up")
    assert while_running(tmp_path, store, run_id, "watch", "action_done", *rollback) == 1
    newest = open_store(str(routes)).history(1)[0]
    assert float(newest.table.route("products").weight) == 0
    assert newest.who == f"runbook {run_id} (oncall)" and "p99 up" in newest.why
    status = json.loads(cli("status", run_id, "--store", store, "--json", cwd=tmp_path).stdout)
    assert (status["state"], status["step"]) == ("paused", "to-10")
    assert [s["state"] for s in status["steps"]] == ["paused", "pending"]


WAITING = """
name = "waiting"

[[steps]]
id = "flip-writes"
action = "approve"
gates = [{ gate = "approval" }]
interval = 0.2
deadline = 60

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10
"""


def test_a_waiting_runner_goes_on_when_someone_approves(tmp_path):
    store = str(tmp_path / "runs.sqlite3")
    routes, run_id = detached(tmp_path, WAITING, store)
    approve = ("approve", "--who", "alice", "--why", "reverse CDC healthy")
    assert while_running(tmp_path, store, run_id, "flip-writes", "gates", *approve) == 0
    status = json.loads(cli("status", run_id, "--store", store, "--json", cwd=tmp_path).stdout)
    assert status["state"] == "done"
    gate = status["steps"][0]["gates"][0]
    assert (gate["outcome"], gate["readings"]["who"]) == ("pass", "alice")
    assert float(open_store(str(routes)).current().table.route("products").weight) == 10


HOLD = """
name = "hold"

[[steps]]
id = "hold"
action = "wait"
bake = 3

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10
"""


def test_after_a_crash_the_bake_counts_only_watched_time(tmp_path):
    store = str(tmp_path / "runs.sqlite3")
    routes, run_id = detached(tmp_path, HOLD, store)
    first = runner(run_id, store, tmp_path)
    wait_for_event(store, run_id, "hold", "action_done")
    os.killpg(first.pid, signal.SIGKILL)  # at once: the hold was watched for ~0 s
    first.wait()
    time.sleep(3.5)  # longer than the bake: the time nobody watched must not count
    reason = ("--who", "carol", "--why", "runner host rebooted, INC-7")
    resumed = cli("resume", run_id, "--store", store, "--lease-seconds", LEASE, *reason,
                  cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    runs = RunStore(store)
    events = {e.kind: e for e in runs.events(run_id) if e.step == "hold"}
    taken_over = [e for e in runs.events(run_id) if e.kind == "resumed"]
    runs.close()
    # Who took the crashed run over, and why, is in the audit trail (it was in none).
    assert [(e.who, e.why) for e in taken_over] == [("carol", "runner host rebooted, INC-7")]
    restarted, passed = events["bake_restarted"], events["step_passed"]
    watched = datetime.fromisoformat(passed.at) - datetime.fromisoformat(restarted.at)
    assert watched.total_seconds() >= 3  # the whole bake was watched after the resume
    assert float(open_store(str(routes)).current().table.route("products").weight) == 10


UNAPPROVED = """
name = "unapproved"

[[steps]]
id = "flip-writes"
action = "approve"
gates = [{ gate = "approval" }]
interval = 0.2
deadline = 1
"""


def test_the_reason_given_to_resume_a_paused_run_is_recorded(tmp_path):
    """`resume --why` was recorded nowhere: the resumed event said "resume", whatever the
    human who decided to go on wrote."""
    store = str(tmp_path / "runs.sqlite3")
    _, run_id = detached(tmp_path, UNAPPROVED, store)
    first = cli("resume", run_id, "--store", store, "--lease-seconds", LEASE, cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr  # nobody approved: paused
    again = cli("resume", run_id, "--store", store, "--lease-seconds", LEASE,
                "--who", "carol", "--why", "metrics fixed, INC-123", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 1, again.stdout + again.stderr
    runs = RunStore(store)
    resumed = [(e.who, e.why) for e in runs.events(run_id) if e.kind == "resumed"]
    runs.close()
    assert resumed == [("carol", "metrics fixed, INC-123")]
