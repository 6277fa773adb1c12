"""The `strangler` console script: help that teaches, and the exit-code contract."""

import subprocess
import sys


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
