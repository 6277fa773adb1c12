"""Under CI a skip fails unless allowed, and `--fast` skips with a reason (tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SUITE = """
import pytest

def test_runs():
    pass

def test_needs_a_browser():
    pytest.skip("headless Chromium not installed")

@pytest.mark.skipif(True, reason="row locks are what this test is about: PostgreSQL")
def test_needs_postgres_features():
    pass

@pytest.mark.postgres
def test_marked_postgres():
    pass
"""


def run_suite(tmp_path: Path, *args: str, **env: str) -> tuple[set[str], str]:
    """Run a small suite under the project's conftest: the tests that failed, and the summary."""
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    postgres: needs PostgreSQL\n")
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "DATABASE_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:django", "-p", "no:cacheprovider",
         *args],
        cwd=tmp_path, env={**base, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    failed = {
        line.split("::")[1].split()[0] for line in lines if line.startswith(("FAILED", "ERROR"))
    }
    assert (result.returncode != 0) == bool(failed), result.stdout
    return failed, lines[-1]


def test_locally_a_skip_is_only_reported(tmp_path):
    failed, summary = run_suite(tmp_path)
    assert not failed
    assert "2 passed, 2 skipped" in summary


def test_under_ci_a_skip_this_machine_could_avoid_fails(tmp_path):
    failed, summary = run_suite(tmp_path, CI="true")
    assert failed == {"test_needs_a_browser"}
    assert "1 skipped" in summary  # the PostgreSQL-only test, on the SQLite pass


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_on_postgres_even_the_postgres_only_skip_fails(tmp_path, ci):
    failed, _ = run_suite(tmp_path, CI=ci, DATABASE_URL="postgres://postgres@127.0.0.1/x")
    assert failed == {"test_needs_a_browser", "test_needs_postgres_features"}


def test_fast_skips_marked_tests_with_a_reason_and_ci_refuses_it(tmp_path):
    failed, summary = run_suite(tmp_path, "--fast")
    assert not failed
    assert "1 passed, 3 skipped" in summary
    failed, _ = run_suite(tmp_path, "--fast", CI="true")
    assert failed == {"test_needs_a_browser", "test_marked_postgres"}
