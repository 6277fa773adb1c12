"""`strangler runbook` as a user types it: bad input is one clear message per problem, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from strangler.control import open_store
from strangler.runbook.store import RunStore
from tests.proxy.helpers import ROOT, table

INVALID = """\
name = "two problems"

[[steps]]
id = "go"
action = "set_weight"
route = "products"
weight = 101
"""


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strangler", "runbook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_runbook_nested_past_the_parsers_limit_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    for argv in (("validate",), ("run", "--store", str(tmp_path / "runs.sqlite3"))):
        done = cli(*argv, str(path))
        assert done.returncode == 2, done.stderr
        assert "runbook.E000" in done.stderr and "nested too deeply" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_an_invalid_runbook_lists_every_problem_with_file_line_and_exits_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(INVALID)
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"strangler runbook: runbook.E006 {path}:1:")
    assert lines[1].startswith(f"strangler runbook: runbook.E010 {path}:7:")
    assert lines[-1] == "strangler runbook: 2 problem(s); nothing ran"
    as_json = json.loads(cli("validate", str(path), "--json").stdout)
    assert [p["id"] for p in as_json["problems"]] == ["runbook.E006", "runbook.E010"]


def test_run_with_an_invalid_runbook_creates_no_run(tmp_path):
    (tmp_path / "bad.toml").write_text(INVALID)
    result = cli("run", "bad.toml", "--routes", "r.toml", "--store", "runs.db", cwd=tmp_path)
    assert result.returncode == 2
    assert not (tmp_path / "runs.db").exists()


def test_missing_params_are_named_with_what_to_pass():
    result = cli("plan", "extract-context", "-p", "route=products")
    assert result.returncode == 2
    assert "param 'tables' needs a value" in result.stderr
    assert "--param tables=VALUE" in result.stderr


def test_plan_shows_every_step_with_its_gates_and_thresholds():
    result = cli(
        "plan",
        "extract-context",
        "-p",
        "route=products",
        "-p",
        "tables=a,b",
        "-p",
        "boundaries=b.toml",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    canary = next(s for s in plan["steps"] if s["id"] == "canary-25")
    assert canary["settings"] == {"route": "products", "weight": 25}
    assert "error_rate(max_delta=0.01, min_requests=50, route=products)" in canary["gates"]


def seeded(tmp_path: Path) -> Path:
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:9", "http://127.0.0.1:10"), "t", "seed")
    return routes


def rollback_route(tmp_path: Path, route: str, routes: str, *extra: str):
    """`strangler runbook run rollback-route` in tmp_path, its runs kept in runs.db."""
    return cli(
        "run",
        "rollback-route",
        "-p",
        f"route={route}",
        "--routes",
        routes,
        "--store",
        "runs.db",
        *extra,
        cwd=tmp_path,
    )


def test_dry_run_validates_and_starts_nothing(tmp_path):
    seeded(tmp_path)
    result = rollback_route(tmp_path, "products", "routes.toml", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was started" in result.stdout
    assert not (tmp_path / "runs.db").exists()


def test_a_route_missing_from_the_table_or_an_unreadable_table_starts_nothing(tmp_path):
    seeded(tmp_path)
    result = rollback_route(tmp_path, "orders", "routes.toml")
    assert result.returncode == 2
    assert "runbook.E015 --routes: route 'orders' is not in the route table" in result.stderr
    result = rollback_route(tmp_path, "products", "nowhere.toml")
    assert result.returncode == 2
    assert "runbook.E012 --routes: cannot read the route store nowhere.toml" in result.stderr
    assert not (tmp_path / "runs.db").exists()


def test_an_unknown_run_or_store_is_bad_usage_in_one_line(tmp_path):
    missing = cli("status", "nope", "--store", str(tmp_path / "typo.db"))
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"strangler runbook: error: no run store at {tmp_path}")
    assert not (tmp_path / "typo.db").exists()  # reading never creates a store
    RunStore(str(tmp_path / "runs.db")).close()
    result = cli("status", "nope", "--store", str(tmp_path / "runs.db"))
    assert result.returncode == 2
    assert result.stderr.startswith("strangler runbook: error: no run 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_text_is_one_clear_problem(tmp_path):
    (tmp_path / "binary.toml").write_bytes(b'name = "x"\n\xff\xfe\x00')
    result = cli("validate", str(tmp_path / "binary.toml"))
    assert result.returncode == 2
    assert "runbook.E000" in result.stderr and "not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_approving_a_step_the_run_does_not_have_is_refused(tmp_path):
    seeded(tmp_path)
    created = rollback_route(tmp_path, "products", "routes.toml", "--detach", "--json")
    run_id = json.loads(created.stdout)["id"]
    result = cli("approve", run_id, "--step", "flip-writez", "--store", "runs.db", cwd=tmp_path)
    assert result.returncode == 2
    assert f"run {run_id} has no step 'flip-writez'" in result.stderr


def test_every_action_has_help_with_its_examples():
    from strangler.cli import build_parser

    top = build_parser()._subparsers._group_actions[0].choices["runbook"]
    actions = top._subparsers._group_actions[0].choices
    assert set(actions) == {
        "validate",
        "plan",
        "run",
        "status",
        "resume",
        "approve",
        "abort",
        "rollback",
        "history",
    }
    for name, parser in actions.items():
        assert f"examples:\n  strangler runbook {name}" in parser.format_help(), name
