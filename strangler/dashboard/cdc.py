"""Change-data status for the page: `strangler cdc status --json` of each Django project.

Each project runs in its own process (a Django project is set up once per process and two
cannot share one), exactly what a runbook gate reads; the last reconcile is the JSON that
`strangler cdc reconcile --json` wrote to a file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from strangler.dashboard.reading import Dated

STATUS_EVERY_S = 5.0
STATUS_TIMEOUT_S = 30.0
# A reading older than this means the last rounds did not finish (a status command hanging
# until its timeout): the page shows its figures as old, not as the live state.
STALE_AFTER_S = 3 * STATUS_EVERY_S
log = logging.getLogger("strangler.dashboard")


@dataclass(frozen=True)
class CdcReading(Dated):
    """One project's status: the JSON `strangler cdc status` printed, or why there is none."""

    settings: str
    status: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    at: float = 0.0  # unix time of the reading, 0 = not read yet
    STALE_AFTER_S: ClassVar[float] = STALE_AFTER_S


def cdc_json(settings: str, *action: str) -> tuple[Any, str]:
    """Run `strangler cdc --settings SETTINGS ACTION... --json`: (its JSON, '') or (None, why).

    Exit status 1 still carries the JSON (dead letters pending is an answer, not a failure).
    """
    argv = [sys.executable, "-m", "strangler", "cdc", "--settings", settings, *action, "--json"]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=STATUS_TIMEOUT_S, env=dict(os.environ)
        )
    except subprocess.TimeoutExpired:
        return None, f"no answer in {STATUS_TIMEOUT_S:.0f} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode in (0, 1) and lines:
        try:
            return json.loads(lines[-1]), ""
        except ValueError:
            pass
    return None, (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]


def read_status(settings: str, applied_through: dict[str, int] | None = None) -> CdcReading:
    """What `strangler cdc status` reports for one project, when; a capturing project given
    what the receiving ones applied also reports what they have not (oldest_unapplied)."""
    through = ["--applied-through", json.dumps(applied_through)] if applied_through else []
    status, error = cdc_json(settings, "status", *through)
    if not isinstance(status, dict):
        return CdcReading(settings, error=error or "not the JSON of cdc status", at=time.time())
    return CdcReading(settings, status, at=time.time())


def read_dead_letters(settings: str) -> tuple[list[dict[str, Any]], str]:
    """The pending dead letters of a receiving project, as `dead-letters list` gives them."""
    letters, error = cdc_json(settings, "dead-letters", "list")
    if not isinstance(letters, list):
        return [], error or "not the JSON of dead-letters list"
    return letters, ""


def read_reconcile(path: Path) -> dict[str, Any]:
    """The last reconcile's drift from its JSON file, with the file's time as when it ran."""
    try:
        text = path.read_text(encoding="utf-8")
        at = path.stat().st_mtime
    except OSError as error:
        return {"file": str(path), "error": f"cannot read: {error.strerror}"}
    try:
        data = json.loads(text.strip().splitlines()[-1])
        tables = [
            {"table": t["table"], "model": t.get("model", ""), "drifted": int(t["drifted"])}
            for t in data["tables"]
        ]
        return {"file": str(path), "at": at, "drifted": int(data["drifted"]), "tables": tables}
    except (ValueError, KeyError, TypeError, IndexError):
        return {
            "file": str(path),
            "error": "not the JSON of `strangler cdc reconcile --json`",
        }


class CdcWatcher:
    """The latest reading of every project, refreshed every few seconds in worker threads."""

    def __init__(self, settings: list[str]) -> None:
        self.readings = {name: CdcReading(name) for name in settings}

    async def run(self) -> None:
        """Read forever (cancel the task to stop)."""
        while True:
            try:
                await self.read_round()
            except Exception:  # one bad round (no fds, no memory) must not stop it for good
                log.exception("reading CDC status failed; trying again")
            await asyncio.sleep(STATUS_EVERY_S)

    async def read_round(self) -> None:
        """Every project, then each capturing one again given what the others applied, so the
        page shows the end-to-end lag, not only the relay's. Both readings of a round land
        together: the page never shows a capturing project without its unapplied changes, nor
        with them counted against some receivers while another could not be read."""
        first = await self._read({name: None for name in self.readings})
        unread = [
            n for n, r in first.items() if r.error and "applied_through" in self.readings[n].status
        ]
        if unread:  # a receiver not read: the others' positions alone would understate the lag
            self.readings.update(first)
            return
        through = {
            name: slowest_applied(
                r.status.get("applied_through") for other, r in first.items() if other != name
            )
            for name, reading in first.items()
            if "outbox_backlog" in reading.status
        }
        again = await self._read({name: t for name, t in through.items() if t})
        self.readings.update(first | again)

    async def _read(self, wanted: dict[str, dict[str, int] | None]) -> dict[str, CdcReading]:
        """{settings: applied_through to give it, or None} -> {settings: reading}."""
        readings = await asyncio.gather(
            *(asyncio.to_thread(read_status, name, through) for name, through in wanted.items())
        )
        return {reading.settings: reading for reading in readings}


def slowest_applied(readings: Iterable[Any]) -> dict[str, int]:
    """Per source table, the lowest position any receiving project has applied through: the
    changes after it are not everywhere yet. (A project's own applied_through is about the
    tables it receives from others, so a capturing project is never given its own.)"""
    through: dict[str, int] = {}
    for applied in readings:
        if not isinstance(applied, dict):
            continue
        for table, seq in applied.items():
            if isinstance(table, str) and type(seq) is int and seq >= 0:
                through[table] = min(seq, through.get(table, seq))
    return through
