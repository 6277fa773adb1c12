"""Real parts for the change-data tests: a Tansu broker, PostgreSQL databases, processes.

Tansu quirk kept here (never in production settings): a JoinGroup completes after a delay that
grows with the session timeout, so consumers get a session_timeout_ms of a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from strangler.cdc.embedded import CONSUMER_OPTIONS, free_port, start_tansu

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TANSU_CONSUMER_OPTIONS = CONSUMER_OPTIONS


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """Poll until `predicate()` is truthy (bounded in time); return its value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Tansu:
    """A Kafka-protocol broker (memory storage) on a free port."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Tansu:
        self.process = start_tansu(self.port)
        return self

    def pause(self) -> None:
        """Make the broker unavailable without losing its (in-memory) log."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


@dataclass
class Proc:
    """A manage.py process of the monolith or the service, restartable and killable."""

    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self, ready: str | None = None) -> Proc:
        """Start; with `ready`, wait until the log shows that line (handlers installed)."""
        seen = self.output().count(ready) if ready else 0
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *self.args],
            cwd=REPO,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        if ready:
            wait_for(lambda: self.output().count(ready) > seen, 60, f"{self.args[-1]}: {ready}")
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (graceful stop), then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def base_env(tmp: Path, bootstrap: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MONOLITH_VAR_DIR": str(tmp / "monolith-var"),
            "CATALOG_VAR_DIR": str(tmp / "catalog-var"),
            "CDC_KAFKA_CONSUMER_OPTIONS": json.dumps(TANSU_CONSUMER_OPTIONS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
