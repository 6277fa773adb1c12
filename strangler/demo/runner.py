"""Run the demo's steps in order inside one DemoContext, stopping cleanly on any failure."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import TextIO

from strangler.demo import STEPS
from strangler.demo.context import DemoContext, DemoError
from strangler.demo.reference import with_reference_path

MARKER = ".strangler-demo"  # only directories carrying it are ever deleted


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    module: ModuleType


def load_steps(names: Sequence[str] = ()) -> list[Step]:
    """The steps to run, in STEPS order; `names` picks a subset (unknown names: ValueError)."""
    unknown = sorted(set(names) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown step(s) {', '.join(unknown)}; the steps are {', '.join(STEPS)}")
    chosen = [name for name in STEPS if not names or name in names]
    modules = [importlib.import_module(f"strangler.demo.{name}") for name in chosen]
    return [Step(name, module.TITLE, module) for name, module in zip(chosen, modules, strict=True)]


def fresh_work_dir(path: Path) -> Path:
    """Empty `path` for a new run; refuse to touch a directory the demo did not create."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder; pick another --work-dir")
    try:
        if path.exists():
            if any(path.iterdir()) and not (path / MARKER).exists():
                raise ValueError(
                    f"{path} exists and was not made by `strangler demo`; pick another --work-dir"
                )
            shutil.rmtree(path)
        path.mkdir(parents=True)
        (path / MARKER).write_text("created by `strangler demo`; deleted on its next run\n")
    except OSError as error:
        raise ValueError(
            f"cannot make {path}: {error.strerror}; pick another --work-dir"
        ) from error
    return path.resolve()


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(
    steps: list[Step],
    work_dir: Path,
    out: TextIO,
    reference: Path,
    keep_running: bool = False,
) -> tuple[int, dict[str, object]]:
    """Run `steps`; exit code 0 when all passed, 1 when one failed. Children always stopped.

    With `keep_running`, everything started stays up after the last step until Ctrl-C/SIGTERM.
    """
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            env = with_reference_path(os.environ, reference)
            ctx = DemoContext(work_dir=work_dir, env=env, stack=stack, reference=reference, out=out)
            for number, step in enumerate(steps, start=1):
                print(f"[{number}/{len(steps)}] {step.title}", file=out, flush=True)
                step_started = time.monotonic()
                try:
                    step.module.run(ctx)
                except DemoError as error:
                    print(f"      FAILED: {error}", file=out, flush=True)
                    return 1, ctx.facts
                ctx.log(f"({time.monotonic() - step_started:.1f}s)")
            print(f"demo finished in {time.monotonic() - started:.1f}s; "
                  f"logs in {work_dir / 'logs'}", file=out, flush=True)  # fmt: skip
            if keep_running:
                print(f"still running: {ctx.monolith_url or 'nothing'} and the rest; "
                      "Ctrl-C stops everything", file=out, flush=True)  # fmt: skip
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
            return 0, ctx.facts
    finally:
        signal.signal(signal.SIGTERM, previous)
