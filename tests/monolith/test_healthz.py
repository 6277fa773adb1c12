"""/healthz tells a load balancer whether the monolith can reach its database."""

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "from django.test import Client; r = Client().get('/healthz'); "
    "print(r.status_code, r.content.decode())"
)


def probe(database_url: str) -> tuple[int, dict]:
    """GET /healthz in a fresh process whose settings point at `database_url`."""
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "monolith.manage", "shell", "-c", PROBE],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, _, body = result.stdout.strip().splitlines()[-1].partition(" ")
    return int(status), json.loads(body)


def test_healthy_when_the_database_answers(tmp_path):
    assert probe(f"sqlite:///{tmp_path / 'shop.sqlite3'}") == (
        200,
        {"status": "ok", "database": "sqlite"},
    )


@pytest.mark.postgres
def test_503_when_the_database_does_not_exist():
    status, body = probe("postgres://postgres@127.0.0.1:5432/strangler_monolith_never_created")
    assert status == 503
    assert body["status"] == "error"
    assert "strangler_monolith_never_created" in body["database"]
