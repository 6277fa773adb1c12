"""`strangler route` end to end on a file store: list, show, weight, set, history, rollback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.control.test_validate import base
from tests.proxy.helpers import ROOT, strangler, write_json


def test_the_route_commands_tell_the_whole_story(tmp_path):
    store = ("--config", str(tmp_path / "routes.toml"))
    initial = write_json(tmp_path / "initial.json", base(weight=0))
    assert strangler("route", "set", str(initial), *store, "--why", "start").returncode == 0
    flipped = strangler("route", "weight", "products", "12.5", *store, "--json", "--who", "ana")
    assert json.loads(flipped.stdout)["version"] == 2
    listed = strangler("route", "list", *store)
    assert "products" in listed.stdout and "canary" in listed.stdout and "12.5%" in listed.stdout
    shown = json.loads(strangler("route", "show", "products", *store).stdout)
    assert shown["route"]["weight"] == 12.5
    rolled = strangler("route", "rollback", "1", *store, "--why", "too early")
    assert rolled.returncode == 0
    history = json.loads(strangler("route", "history", *store, "--json").stdout)["versions"]
    assert [v["version"] for v in history] == [3, 2, 1]
    assert history[1]["who"] == "ana" and history[0]["after"]["routes"][0]["weight"] == 0


def test_bad_input_exits_2_with_every_message_and_no_traceback(tmp_path):
    store = ("--config", str(tmp_path / "routes.toml"))
    initial = write_json(tmp_path / "initial.json", base(weight=0))
    strangler("route", "set", str(initial), *store)
    unknown = strangler("route", "weight", "orders", "10", *store)
    assert unknown.returncode == 2 and "route.E022" in unknown.stderr
    bad = write_json(tmp_path / "bad.json", base(weight=5, service="ghost", regex="("))
    dry = strangler("route", "set", str(bad), "--dry-run", "--json")
    assert dry.returncode == 2
    assert {e["id"] for e in json.loads(dry.stdout)["errors"]} == {
        "route.E007",
        "route.E010",
        "route.E009",
    }
    missing = strangler("route", "list", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    nowhere = strangler("route", "list", env={"STRANGLER_ROUTES": ""})
    assert nowhere.returncode == 2 and "--config" in nowhere.stderr
    for result in (unknown, dry, missing, nowhere):
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["deep.json", "deep.toml"])
def test_a_table_file_nested_past_the_parsers_limit_is_route_e000(tmp_path, name):
    """A table nested 100,000 deep is a syntax error (exit 2), not a RecursionError."""
    nested = "[" * 100_000 + "]" * 100_000
    path = tmp_path / name
    path.write_text(nested if name.endswith(".json") else f"default_backend = {nested}\n")
    result = strangler("route", "set", str(path), "--dry-run")
    assert result.returncode == 2 and "route.E000" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_route_and_proxy_fail_cleanly_when_the_store_is_unusable(tmp_path):
    missing_db = "postgresql://postgres@127.0.0.1:5432/strangler_control_does_not_exist"
    for args in (
        ("route", "list", "--database-url", missing_db),
        ("proxy", "--database-url", missing_db, "--listen", "127.0.0.1:0"),
    ):
        result = strangler(*args)
        assert result.returncode == 2
        assert "cannot reach the PostgreSQL route store" in result.stderr
        assert "Traceback" not in result.stderr
    broken = write_json(tmp_path / "broken.json", {"backends": {}})
    started = strangler("proxy", "--config", str(broken), "--listen", "127.0.0.1:0")
    assert started.returncode == 2 and "route.E002" in started.stderr


def test_seeding_with_if_empty_never_overwrites_a_flipped_table(tmp_path):
    store = ("--config", str(tmp_path / "routes.toml"))
    seed = write_json(tmp_path / "seed.json", base(weight=0))
    assert strangler("route", "set", str(seed), "--if-empty", *store).returncode == 0
    assert strangler("route", "weight", "products", "50", *store).returncode == 0
    again = strangler("route", "set", str(seed), "--if-empty", *store, "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == {"version": 2, "changed": False}
    shown = json.loads(strangler("route", "show", "products", *store).stdout)
    assert shown["route"]["weight"] == 50


def test_overlapping_cli_flips_of_different_routes_all_exit_0(tmp_path):
    raw = base(weight=0)
    route = raw["routes"][0]
    raw["routes"] = [{**route, "id": f"r{i}", "prefix": f"/api/v1/r{i}"} for i in range(16)]
    store = ("--config", str(tmp_path / "routes.toml"))
    assert (
        strangler("route", "set", str(write_json(tmp_path / "t.json", raw)), *store).returncode == 0
    )
    flips = [
        subprocess.Popen(
            [sys.executable, "-m", "strangler", "route", "weight", f"r{i}", "30", *store],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(16)
    ]
    outcomes = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in flips]
    assert [code for code, _ in outcomes] == [0] * 16, outcomes
    shown = json.loads(strangler("route", "list", *store, "--json").stdout)
    assert shown["version"] == 17
    assert {r["weight"] for r in shown["table"]["routes"]} == {30}


def test_a_push_over_a_table_that_moved_exits_1_saying_so_and_changes_nothing(tmp_path):
    store = ("--config", str(tmp_path / "routes.toml"))
    pushed = str(write_json(tmp_path / "t.json", base(weight=0)))
    assert strangler("route", "set", pushed, *store).returncode == 0
    assert strangler("route", "weight", "products", "20", *store).returncode == 0
    stale = strangler("route", "set", pushed, *store, "--expect", "1", "--json")
    assert stale.returncode == 1
    assert json.loads(stale.stdout) == {
        "changed": False,
        "conflict": "table is at version 2, not 1",
    }
    assert "nothing changed, re-run" in stale.stderr and "Traceback" not in stale.stderr
    shown = json.loads(strangler("route", "show", "products", *store).stdout)
    assert (shown["version"], shown["route"]["weight"]) == (2, 20)


def test_a_shadow_share_the_weight_leaves_no_room_for_is_flagged_and_listed(tmp_path):
    """Only requests the monolith answers are shadowed: at weight 100 none can be."""
    store = ("--config", str(tmp_path / "routes.toml"))
    assert (
        strangler(
            "route", "set", str(write_json(tmp_path / "t.json", base(weight=100))), *store
        ).returncode
        == 0
    )
    useless = strangler("route", "shadow", "products", "10", *store)
    assert useless.returncode == 0, useless.stderr
    assert "warning" in useless.stderr and "shadows nothing" in useless.stderr
    assert "10% (0% reachable)" in strangler("route", "list", *store).stdout
    assert strangler("route", "weight", "products", "95", *store).returncode == 0
    partial = json.loads(strangler("route", "shadow", "products", "10", *store, "--json").stdout)
    assert "at most 5% of its requests" in partial["warning"]
    (row,) = json.loads(strangler("route", "list", *store, "--json").stdout)["routes"]
    assert (row["shadow_percent"], row["shadow_reachable_percent"]) == (10, 5)
    assert strangler("route", "weight", "products", "0", *store).returncode == 0
    fine = strangler("route", "shadow", "products", "10", *store)
    assert fine.returncode == 0 and "warning" not in fine.stderr
    assert " 10%  " in strangler("route", "list", *store).stdout
