"""`strangler demo`'s cdc step: a monolith change appears in the extracted catalog service."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_demo_syncs_the_catalog_service_and_stops_everything(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    result = subprocess.run(
        [sys.executable, "-m", "strangler", "demo", "--work-dir", str(tmp_path / "demo"),
         "--steps", "database,monolith,cdc", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    cdc = json.loads(result.stdout)["facts"]["cdc"]
    assert cdc["products"] > 0 and cdc["drifted"] == 0
    assert cdc["catalog_url"].startswith("http://127.0.0.1:")
    for pid in cdc["pids"]:  # broker, consumer, relay, service: all stopped at the end
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
