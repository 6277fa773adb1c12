"""Fixtures for route-store tests: a file store and a PostgreSQL store, same interface."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database named strangler_control_* on the machine's PostgreSQL, dropped after."""
    name = f"strangler_control_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_location(request: pytest.FixtureRequest, tmp_path) -> str:
    """Where a store lives: a TOML file or a PostgreSQL database (tests run against both)."""
    if request.param == "file":
        return str(tmp_path / "routes.toml")
    return request.getfixturevalue("pg_url")
