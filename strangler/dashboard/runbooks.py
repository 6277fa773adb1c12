"""Runbook runs for the page, read, approved and aborted through strangler.runbook.

Reading uses the runbook package's own store and status report (the figures `strangler
runbook status` prints); approve and abort are `strangler.runbook.runs`' (what `strangler
runbook approve|abort` calls), so the record written is the CLI's and no runbook logic lives
here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from strangler.dashboard.reading import Dated
from strangler.runbook import runs
from strangler.runbook.definition import parse
from strangler.runbook.report import status
from strangler.runbook.store import NoSuchRun, RunStore, StoreError

RUNS_SHOWN = 5
READ_EVERY_S = 2.0
STALE_AFTER_S = 3 * READ_EVERY_S  # as the parity panel's: a store that hangs shows as old
log = logging.getLogger("strangler.dashboard")

RunAction = Literal["approve", "abort"]
ACTIONS: tuple[RunAction, ...] = ("approve", "abort")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


@dataclass(frozen=True)
class RunsReading(Dated):
    """The newest runs' status reports, or why they could not be read."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    at: float = 0.0
    STALE_AFTER_S: ClassVar[float] = STALE_AFTER_S


def read_runs(location: str, limit: int = RUNS_SHOWN) -> RunsReading:
    """The status report of each of the newest runs (a store per call: sqlite3 is per thread)."""
    try:
        store = RunStore(location)
    except StoreError as error:
        return RunsReading(error=str(error), at=time.time())
    try:
        reports = []
        for run in store.runs(limit):
            runbook = parse(run.definition, run.source, run.params)
            reports.append(status(runbook, run, store.events(run.id)))
        return RunsReading(reports, at=time.time())
    except Exception as error:  # a store written by another version, a broken definition
        log.exception("reading runbook runs failed")
        return RunsReading(error=f"cannot read the runs: {error}", at=time.time())
    finally:
        store.close()


def act(
    location: str, action: RunAction, run_id: str, who: str, why: str, step: str
) -> tuple[bool, str]:
    """Approve `step` (the one the page showed waiting) or abort a run; (done, what happened
    or why it was refused)."""
    try:
        store = RunStore(location)
    except StoreError as error:
        return False, str(error)
    try:
        if action == "approve":
            step = runs.approve(store, run_id, who, why, step)
            return True, f"approved {step} of run {run_id} as {who}"
        runs.abort(store, run_id, who, why)
        return True, f"run {run_id} aborted"
    except (runs.Refused, NoSuchRun, StoreError) as refused:
        return False, str(refused)
    finally:
        store.close()


class RunbookWatcher:
    """The latest reading of the run store, refreshed every few seconds in a worker thread."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.reading = RunsReading()

    async def refresh(self) -> None:
        self.reading = await asyncio.to_thread(read_runs, self.location)

    async def run(self) -> None:
        """Read forever (cancel the task to stop)."""
        while True:
            await self.refresh()
            await asyncio.sleep(READ_EVERY_S)
