"""Fixtures: a migrated catalog-service database for the CDC panel, a PostgreSQL route store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.control.conftest import pg_url  # noqa: F401 - the PostgreSQL store fixture
from tests.proxy.helpers import ROOT

CATALOG_SETTINGS = "extracted.catalog_service.settings"


PARK = (
    "import django; django.setup(); from strangler.cdc.models import DeadLetter; "
    "DeadLetter.objects.create(topic='monolith.catalog_product', partition=0, offset=42, "
    "source_table='catalog_product', key='42', seq=1, envelope='{}', error='boom', attempts=5)"
)  # a dead letter as the consumer leaves one: the key stays parked until replayed


@pytest.fixture(scope="session")
def catalog_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """CATALOG_DATABASE_URL of a migrated service database holding one parked dead letter."""
    url = f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.sqlite3'}"
    env = {"PATH": "/usr/bin:/bin", "CATALOG_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
           "DJANGO_SETTINGS_MODULE": CATALOG_SETTINGS}  # fmt: skip
    for argv in (["-m", "django", "migrate", "-v0"], ["-c", PARK]):
        done = subprocess.run(
            [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
    return url
