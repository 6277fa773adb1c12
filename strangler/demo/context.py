"""What the demo's steps share: the work dir, subprocess environment, log, and cleanup."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


class DemoError(Exception):
    """A step could not do its part; the message says what happened and where to look."""


@dataclass
class DemoContext:
    """State shared by the steps of one `strangler demo` run."""

    work_dir: Path
    env: dict[str, str]
    stack: ExitStack
    reference: Path  # holds the reference `monolith/` and `extracted/` (see demo/reference.py)
    out: TextIO = sys.stdout
    monolith_url: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)  # running things later steps use

    @property
    def log_dir(self) -> Path:
        path = self.work_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, message: str) -> None:
        """One line of the story, indented under the current step's title."""
        print(f"      {message}", file=self.out, flush=True)

    def python(self, *args: str) -> list[str]:
        """argv running this interpreter (the one the toolkit is installed in)."""
        return [sys.executable, *args]

    def run(self, name: str, argv: Sequence[str], timeout: float = 120) -> str:
        """Run a command to completion; its output goes to logs/<name>.log and is returned."""
        log_path = self.log_dir / f"{name}.log"
        try:
            result = subprocess.run(
                list(argv),
                env=self.env,
                cwd=self.work_dir,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise DemoError(
                f"{name}: still running after {timeout:.0f}s: {' '.join(argv)}"
            ) from error
        log_path.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise DemoError(
                f"{name} failed (exit {result.returncode}): {' '.join(argv)}\n"
                f"{tail(result.stdout + result.stderr)}\n(full output: {log_path})"
            )
        return result.stdout

    def start(self, name: str, argv: Sequence[str], pass_fds: Sequence[int] = ()) -> Process:
        """Start a long-running process, stopped when the demo ends (even on error or Ctrl-C)."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(argv),
                env=self.env,
                cwd=self.work_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=tuple(pass_fds),
                start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            )
        process = Process(name, popen, log_path)
        self.stack.callback(process.stop)
        return process


@dataclass
class Process:
    """A child process started by a step, with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self) -> str:
        return tail(self.log_path.read_text(errors="replace")) if self.log_path.exists() else ""

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the process (it stops its own children), then SIGKILL its group if need be."""
        if self.alive():
            self.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # stragglers of a crashed or stuck parent
        self.popen.wait()


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
