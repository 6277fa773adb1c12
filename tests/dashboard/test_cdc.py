"""The CDC panel's sources: `strangler cdc status --json` of a real project, reconcile files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from strangler.dashboard.cdc import (
    CdcWatcher,
    read_dead_letters,
    read_reconcile,
    read_status,
    slowest_applied,
    slowest_offsets,
)
from tests.dashboard.conftest import CATALOG_SETTINGS
from tests.proxy.helpers import ROOT


def test_status_of_a_receiving_project_counts_its_parked_dead_letters(
    catalog_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_DATABASE_URL", catalog_db)
    reading = read_status(CATALOG_SETTINGS)  # exit status 1 (pending) is still a reading
    assert reading.error == ""
    assert (reading.status["dead_letters"], reading.status["parked_keys"]) == (1, 1)


def test_the_parked_dead_letters_are_listed_as_the_cli_lists_them(
    catalog_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_DATABASE_URL", catalog_db)
    letters, error = read_dead_letters(CATALOG_SETTINGS)
    assert error == ""
    assert [(d["table"], d["key"], d["attempts"]) for d in letters] == [
        ("catalog_product", "42", 5)
    ]


def test_a_project_that_cannot_load_says_why() -> None:
    reading = read_status("no_such_project.settings")
    assert reading.status == {}
    assert "not importable" in reading.error


def test_the_last_reconcile_is_read_from_its_json_file(tmp_path: Path) -> None:
    report = tmp_path / "reconcile.json"
    report.write_text(
        json.dumps(
            {
                "drifted": 3,
                "tables": [{"table": "catalog_product", "model": "catalog.Product", "drifted": 3}],
                "repaired": {},
            }
        )
    )
    read = read_reconcile(report)
    assert (read["drifted"], read["tables"][0]["table"]) == (3, "catalog_product")
    report.write_text("drift: lots\n")
    assert "not the JSON" in read_reconcile(report)["error"]
    assert "cannot read" in read_reconcile(tmp_path / "none.json")["error"]


def test_the_capturing_project_shows_what_the_receiving_one_has_not_applied(
    catalog_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monolith_db = f"sqlite:///{tmp_path / 'monolith.sqlite3'}"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": monolith_db, "PYTHONPATH": str(ROOT),
           "MONOLITH_VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "monolith.settings"}  # fmt: skip
    create = (
        "import django; django.setup(); from monolith.catalog.models import Category; "
        "Category.objects.create(name='Tea', slug='tea')"
    )  # captured: one outbox row the service has not applied
    for argv in (["-m", "django", "migrate", "-v0"], ["-c", create]):
        done = subprocess.run(
            [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
    monkeypatch.setenv("CATALOG_DATABASE_URL", catalog_db)
    monkeypatch.setenv("DATABASE_URL", monolith_db)
    monkeypatch.setenv("MONOLITH_VAR_DIR", str(tmp_path))
    watcher = CdcWatcher([CATALOG_SETTINGS, "monolith.settings"])

    asyncio.run(watcher.read_round())

    status = watcher.readings["monolith.settings"].status
    assert (status["outbox_backlog"], status["unapplied"]) == (1, 1)
    assert status["oldest_unapplied_seconds"] >= 0
    # The service captures too (the reverse flow); the monolith's applied_through, about the
    # service's outbox, is what it is measured against, and it has nothing there.
    assert watcher.readings[CATALOG_SETTINGS].status["unapplied"] == 0

    # A receiver that cannot be read: the end-to-end figures are not shown at all, rather
    # than counted against the receivers that answered.
    monkeypatch.setenv("CATALOG_DATABASE_URL", f"sqlite:///{tmp_path / 'gone' / 'db.sqlite3'}")
    asyncio.run(watcher.read_round())
    assert watcher.readings[CATALOG_SETTINGS].error
    assert "unapplied" not in watcher.readings["monolith.settings"].status
    assert watcher.readings["monolith.settings"].status["outbox_backlog"] == 1


def test_the_slowest_receiver_decides_what_is_applied() -> None:
    assert slowest_applied([{"a": 5, "b": 1}, {"a": 3}, None, {"a": -1, "b": "x"}]) == {
        "a": 3,
        "b": 1,
    }


def test_the_slowest_receiver_decides_which_offsets_are_applied() -> None:
    both = {
        "applied_through": {"a": 9, "b": 4},
        "applied_offsets": {"a": {"0": 7, "1": 2}, "b": {}},
    }
    behind = {"applied_through": {"a": 8}, "applied_offsets": {"a": {"0": 5}}}
    older = {"applied_through": {"c": 3}}  # a receiver that reports no offsets
    odd = {"applied_through": {"b": 4}, "applied_offsets": {"b": {"\u0663": 1, "-1": 2}}}
    assert slowest_offsets([both, behind, older, odd, None]) == {
        # partition 1: the second receiver applied nothing from it, so all of it counts
        "a": {"0": 5},
        "b": {},
    }
