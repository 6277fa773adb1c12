"""`make demo` starts by analyzing the bundled monolith and printing the proposal."""

import re
import subprocess
import sys


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strangler", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_analysis_is_the_first_step_of_the_demo():
    listed = demo("--list")
    assert listed.returncode == 0
    assert listed.stdout.split()[0] == "analyze"


def test_demo_analyze_step_prints_the_proposal_and_writes_the_map(tmp_path):
    result = demo("--steps", "analyze", "--work-dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "contexts proposed; modularity" in out
    assert re.search(r"^\s+orders\s+Order, OrderLine", out, re.MULTILINE)
    assert re.search(r"\w+ -> \w+ \w+: \w+/\w+\.py:\d+", out)  # a seam with its file:line
    assert "extraction order, easiest first:" in out
    page = tmp_path / "demo" / "contexts.html"
    assert page.read_text().startswith("<!DOCTYPE html>")
