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


@dataclass(frozen=True)
class Applied:
    """What the receiving projects applied, as a capturing project's status is given it."""

    through: dict[str, int]
    offsets: dict[str, dict[str, int]] = field(default_factory=dict)

    def options(self) -> list[str]:
        through = ["--applied-through", json.dumps(self.through)]
        offsets = {t: o for t, o in self.offsets.items() if t in self.through}
        return through + (["--applied-offsets", json.dumps(offsets)] if offsets else [])


def read_status(settings: str, applied: Applied | None = None) -> CdcReading:
    """What `strangler cdc status` reports for one project, when; a capturing project given
    what the receiving ones applied also reports what they have not (oldest_unapplied)."""
    status, error = cdc_json(settings, "status", *(applied.options() if applied else []))
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
        applied: dict[str, Applied | None] = {}
        for name, reading in first.items():
            if "outbox_backlog" not in reading.status:
                continue
            others = [r.status for other, r in first.items() if other != name]
            applied[name] = Applied(
                slowest_applied(status.get("applied_through") for status in others),
                slowest_offsets(others),
            )
        again = await self._read({name: a for name, a in applied.items() if a and a.through})
        self.readings.update(first | again)

    async def _read(self, wanted: dict[str, Applied | None]) -> dict[str, CdcReading]:
        """{settings: what the receivers applied, to give it, or None} -> {settings: reading}."""
        readings = await asyncio.gather(
            *(asyncio.to_thread(read_status, name, applied) for name, applied in wanted.items())
        )
        return {reading.settings: reading for reading in readings}


def slowest_offsets(statuses: Iterable[Any]) -> dict[str, dict[str, int]]:
    """Per source table and partition, the lowest offset any receiving project applied
    through. A partition one of them applied nothing from is left out (all of it counts as
    unapplied), and so is a table one of them reports no offsets for (its applied_through
    alone is then the measure)."""
    merged: dict[str, dict[str, int]] = {}
    without: set[str] = set()
    for status in statuses:
        if not isinstance(status, dict) or not isinstance(status.get("applied_through"), dict):
            continue
        offsets = status.get("applied_offsets")
        offsets = offsets if isinstance(offsets, dict) else {}
        for table in status["applied_through"]:
            theirs = offsets.get(table)
            if not isinstance(theirs, dict):
                without.add(table)
                continue
            valid = {
                p: o
                for p, o in theirs.items()
                if isinstance(p, str) and p.isascii() and p.isdigit() and type(o) is int and o >= 0
            }
            ours = merged.get(table, valid)
            merged[table] = {p: min(o, valid[p]) for p, o in ours.items() if p in valid}
    return {table: offsets for table, offsets in merged.items() if table not in without}


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
