"""`strangler demo` runs the story end to end and leaves nothing running behind it."""

import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.slow


def strangler(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "strangler", *args],
        capture_output=True,
        text=True,
        timeout=420,  # the demo takes 1.5-3.5 min on a shared 2-core machine; no time is asserted
        cwd=cwd,
        env=env,
    )


def test_demo_checks_out_over_http_and_stops_the_monolith(tmp_path):
    result = strangler("demo", "--work-dir", str(tmp_path / "demo"), "--json")

    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)["facts"]
    checkout = facts["checkout"]
    assert checkout["status"] == "paid"
    assert checkout["payment"] == "captured"
    assert checkout["emails"] == ["order_confirmation", "shipment_pending"]
    assert checkout["shipment"].startswith("TRK")
    mails = list((tmp_path / "demo" / "mail").iterdir())
    assert len(mails) == 2
    assert "Your order " + checkout["order"] in "".join(m.read_text() for m in mails)
    parity = facts["parity"]  # shadowed onto the catalog before the weight moved
    assert parity["gate"] == "pass" and parity["samples"] >= 100 and parity["parity"] == 100.0
    with pytest.raises(ProcessLookupError):
        os.kill(facts["monolith_pid"], 0)  # the server was stopped at the end
    assert f"dashboard {facts['dashboard']['url']}" in result.stderr  # told where to look
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{facts['dashboard']['url']}healthz", timeout=2)  # and stopped with the rest
    the_migration_ran_through_the_runbook(facts)


def the_migration_ran_through_the_runbook(facts: dict) -> None:
    """What a user checks after `make demo`: the runbook's record, the audit log, the client."""
    runbook = facts["runbook"]
    assert runbook["state"] == "done"
    assert all(step["state"] == "passed" for step in runbook["steps"].values())
    assert runbook["steps"]["canary-25"]["attempts"] == 2  # failed with the fault, then passed
    assert [(r["route"], r["weight"]) for r in runbook["rollbacks"]] == [("products", 5)]
    client = runbook["client"]
    assert client["failed_outside_fault"] == 0
    assert client["catalog"] > 0 and client["monolith"] > 0
    assert client["fallbacks"] > 0  # the fault's failures, answered from the monolith
    assert any("ProductViewSet" in e for e in runbook["unreachable_endpoints"])
    assert runbook["reverse_cdc_ms"] > 0

    status = strangler("runbook", "status", runbook["run"], "--store", runbook["store"], "--json")
    assert status.returncode == 0, status.stderr
    steps = json.loads(status.stdout)["steps"]
    failed = next(s for s in steps if s["id"] == "canary-25")["failures"][0]
    assert {g["gate"] for g in failed["gates"]} >= {"error_rate", "breaker_closed"}
    history = strangler("route", "history", "--config", facts["proxy"]["config"], "--json")
    versions = json.loads(history.stdout)["versions"]
    rollback = next(v for v in versions if "automatic rollback" in v["why"])
    assert rollback["who"] == f"runbook {runbook['run']} (demo)"
    assert "canary-25 failed" in rollback["why"]
    route = json.loads(
        strangler("route", "show", "products", "--config", facts["proxy"]["config"]).stdout
    )["route"]
    assert (route["state"], route["weight"]) == ("retired", 100)


def test_demo_lists_its_steps_in_order():
    result = strangler("demo", "--list")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names.index("database") < names.index("monolith") < names.index("checkout")


def test_unknown_step_is_bad_usage():
    result = strangler("demo", "--steps", "teleport")
    assert result.returncode == 2
    assert "unknown step(s) teleport" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_refuses_to_wipe_a_directory_it_did_not_create(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")

    result = strangler("demo", "--work-dir", str(precious))

    assert result.returncode == 2
    assert (precious / "thesis.txt").exists()


def test_a_work_dir_that_cannot_be_made_is_bad_usage_in_one_line(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for work_dir in (a_file, a_file / "demo"):
        result = strangler("demo", "--work-dir", str(work_dir), "--steps", "analyze")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("strangler demo: error: --work-dir:")
        assert len(result.stderr.strip().splitlines()) == 1
        assert a_file.read_text() == "not a folder"


def test_a_failing_step_exits_1_and_still_stops_the_monolith(tmp_path):
    # The gateway class does not exist: checkout fails after the monolith started.
    env_file = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "strangler", "demo", "--work-dir", str(env_file), "--json",
         "--steps", "database,monolith,checkout"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
             "PAYMENT_GATEWAY": "monolith.payments.gateway.NoSuchGateway"},
    )  # fmt: skip

    assert result.returncode == 1
    assert "FAILED" in result.stderr
    facts = json.loads(result.stdout)["facts"]
    with pytest.raises(ProcessLookupError):
        os.kill(facts["monolith_pid"], 0)


def test_keep_running_serves_until_sigterm_then_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "strangler", "demo", "--work-dir", str(tmp_path / "demo"),
         "--steps", "database,monolith", "--keep-running"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("still running:"):
                break
        assert lines and lines[-1].startswith("still running:"), "".join(lines)
        url = lines[-1].split()[2]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    pid = int(re.search(r"\(pid (\d+)", "".join(lines)).group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=2)
