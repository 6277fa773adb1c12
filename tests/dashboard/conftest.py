"""A migrated SQLite database of the extracted catalog service, for the CDC panel's readings."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.proxy.helpers import ROOT

CATALOG_SETTINGS = "extracted.catalog_service.settings"


@pytest.fixture(scope="session")
def catalog_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """CATALOG_DATABASE_URL of a migrated service database holding one parked dead letter."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.sqlite3"
    url = f"sqlite:///{path}"
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0", "--settings", CATALOG_SETTINGS],
        env={"PATH": "/usr/bin:/bin", "CATALOG_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    park(Path(path), key="42")
    return url


def park(path: Path, key: str) -> None:
    """A dead letter as the consumer leaves one: the key stays parked until replayed."""
    with sqlite3.connect(path) as db:
        db.execute(
            'INSERT INTO strangler_cdc_dead_letter (topic, partition, "offset", source_table,'
            " key, seq, envelope, error, attempts, created_at) VALUES"
            " ('monolith.catalog_product', 0, ?, 'catalog_product', ?, 1, '{}', 'boom', 5,"
            " '2026-01-01 00:00:00')",
            (int(key), key),
        )
