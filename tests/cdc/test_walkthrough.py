"""docs/cdc.md's "Your own project, step by step" works as written.

Its files are written from the code blocks that start with `# file: PATH`, its commands run
from the console blocks, in order (a trailing `&` starts a process that runs until the end),
in a fresh directory; only port 9092 becomes a free one and `pip install` is skipped (this
environment has the package). Real processes: the embedded broker, relay and consumer.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdc.harness import REPO, free_port, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SECTION = re.compile(r"^## Your own project, step by step\n(.*?)^## ", re.M | re.S)
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def walkthrough() -> list[tuple[str, str]]:
    """The section's code blocks as (language, text), in order."""
    found = SECTION.search((REPO / "docs" / "cdc.md").read_text())
    assert found, "docs/cdc.md has no 'Your own project, step by step' section"
    return BLOCK.findall(found.group(1))


def test_the_your_own_project_walkthrough_runs_as_written(tmp_path: Path):
    port = str(free_port())
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    background: list[subprocess.Popen] = []
    commands: list[str] = []
    for language, text in walkthrough():
        text = text.replace("9092", port)
        if language == "python":
            first, _, body = text.partition("\n")
            assert first.startswith("# file: "), first
            path = tmp_path / first.removeprefix("# file: ")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        elif language == "console":
            commands += [line.removeprefix("$ ") for line in text.splitlines()]
    assert commands, "no commands in the walkthrough"
    log = (tmp_path / "processes.log").open("w")
    try:
        for command in commands:
            if command.startswith("pip install"):
                continue
            if command.startswith("export "):
                name, _, value = command.removeprefix("export ").partition("=")
                env[name] = value
                continue
            if command.endswith(" &"):
                background.append(
                    subprocess.Popen(
                        shlex.split(command[:-2]),
                        cwd=tmp_path,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
                continue
            if "reconcile" in command:  # asynchronous: exit 0 once the service caught up
                wait_for(lambda c=command: run(c, tmp_path, env).returncode == 0, 90,
                         f"`{command}` to exit 0")  # fmt: skip
                continue
            done = run(command, tmp_path, env)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        rows = run("strangler cdc --settings catalog.settings status --json", tmp_path, env)
        assert '"dead_letters": 0' in rows.stdout, rows.stdout
    finally:
        for process in reversed(background):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
