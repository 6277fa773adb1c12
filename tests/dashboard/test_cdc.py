"""The CDC panel's sources: `strangler cdc status --json` of a real project, reconcile files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strangler.dashboard.cdc import read_dead_letters, read_reconcile, read_status
from tests.dashboard.conftest import CATALOG_SETTINGS


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
