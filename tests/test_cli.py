"""The `strangler` console script: help that teaches, and the exit-code contract."""

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strangler", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_jobs_and_exit_codes():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "analyze" in result.stdout
    assert "Exit codes" in result.stdout


def test_no_subcommand_is_bad_usage():
    result = run_cli()
    assert result.returncode == 2


def test_unknown_subcommand_is_bad_usage_without_traceback():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def _into_closed_pipe(*args: str, cwd: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with stdout a pipe whose reader has already gone (as `| head` leaves it)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "strangler", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            cwd=cwd,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("action", ["list", "history"])
def test_output_piped_into_a_reader_that_went_away_ends_quietly(tmp_path, action):
    """`strangler route history | head -1`: no traceback, the shell's code for SIGPIPE."""
    table = {
        "default_backend": "monolith",
        "backends": {"monolith": {"url": "http://127.0.0.1:1"}},
        "routes": [],
    }
    (tmp_path / "table.json").write_text(json.dumps(table))
    seeded = subprocess.run(
        [
            sys.executable,
            "-m",
            "strangler",
            "route",
            "set",
            "table.json",
            "--config",
            "routes.json",
        ],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert seeded.returncode == 0, seeded.stderr
    result = _into_closed_pipe("route", action, "--config", "routes.json", cwd=str(tmp_path))
    assert result.stderr == b"", result.stderr.decode()
    assert result.returncode == 141
