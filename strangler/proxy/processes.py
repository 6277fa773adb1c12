"""`process_*` metrics for the whole proxy: the supervisor and every process under it.

With `--workers N` the proxy is 1 + N processes (and a mirror process per worker when it
shadows); prometheus_client's process collector describes only the one serving /metrics.
Read from /proc (Linux, as that collector is). CPU includes the children each live process
has reaped (cutime, cstime), and the supervisor reaps a dead worker's orphans too
(reap_orphans), so a worker that died and was started again takes none of its seconds, or its
mirror's, with it: the counter never goes down.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    """Linux prctl; nothing elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value)


def signal_on_parent_death(signum: int) -> None:
    """Have the kernel send this process `signum` when its parent dies, even by kill -9."""
    _prctl(_PR_SET_PDEATHSIG, signum)


def reap_orphans() -> None:
    """Become the parent of this process's orphaned descendants (a dead worker's mirror),
    instead of init: they are reaped here, and their CPU counted in this process's."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


@dataclass(frozen=True)
class Usage:
    """What one process uses, or a tree of them summed."""

    cpu_seconds: float = 0.0
    resident_bytes: int = 0
    virtual_bytes: int = 0
    open_fds: int = 0


def tree(root: int) -> list[int]:
    """`root` and every process under it, parents before children."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue  # gone meanwhile
        for task in tasks:
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from its third field (state) on: the command name before it may hold
    spaces and parentheses, so the fields are those after its last ")"."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _proportional_bytes(pid: int) -> int | None:
    """The process's proportional set size: each resident page divided among the processes
    sharing it, so a sum over forked workers counts the pages they share once (their RSS
    would count them in each). None where /proc has no smaps_rollup (Linux before 4.14)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu_seconds(fields: list[str]) -> float:
    """User and system CPU of a process and of the children it reaped, from its stat fields."""
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def _memory_and_fds(pid: int, fields: list[str]) -> Usage:
    """Memory (proportional where Linux says it, else resident) and open fds of `pid`."""
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return Usage()
    proportional = _proportional_bytes(pid)
    return Usage(
        resident_bytes=int(fields[21]) * PAGE if proportional is None else proportional,
        virtual_bytes=int(fields[20]),
        open_fds=fds,
    )


def total(pids: list[int]) -> Usage:
    """What `pids` use together. Every stat is read first and at once: a worker reaped while
    the slower memory reads ran would be in neither its own CPU figure nor its parent's."""
    stats = []
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile: nothing of it
            stats.append((pid, _stat(pid)))
    parts = [_memory_and_fds(pid, fields) for pid, fields in stats]
    return Usage(
        cpu_seconds=sum(_cpu_seconds(fields) for _, fields in stats),
        resident_bytes=sum(p.resident_bytes for p in parts),
        virtual_bytes=sum(p.virtual_bytes for p in parts),
        open_fds=sum(p.open_fds for p in parts),
    )


def _started(pid: int) -> float:
    """When `pid` started, in seconds since the epoch."""
    ticks = int(_stat(pid)[19])
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + ticks / TICKS


class ProcessMetrics:
    """`process_*` of the proxy's process tree, rooted at its supervisor (or the process
    itself when it runs alone), in Prometheus text format."""

    def __init__(self, root: int) -> None:
        self.root = root
        try:
            self.started: float | None = _started(root)
        except OSError:  # no /proc (not Linux): no process_* series, as with prometheus_client
            self.started = None
        self.cpu_seconds = 0.0  # the highest total shown: a counter never goes down

    def render(self) -> str:
        if self.started is None:
            return ""
        pids = tree(self.root)
        used = total(pids)
        # A worker reaped between the reads of its parent and its own is in neither once.
        self.cpu_seconds = max(self.cpu_seconds, used.cpu_seconds)
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        about = f"the proxy's {len(pids)} processes"
        series = (
            (
                "cpu_seconds_total",
                "counter",
                "User and system CPU time in seconds",
                self.cpu_seconds,
            ),
            (
                "resident_memory_bytes",
                "gauge",
                "Resident memory in bytes (PSS summed)",
                used.resident_bytes,
            ),
            ("virtual_memory_bytes", "gauge", "Virtual memory in bytes", used.virtual_bytes),
            ("open_fds", "gauge", "Open file descriptors", used.open_fds),
            ("max_fds", "gauge", "File descriptors a process may open", limit),
            ("start_time_seconds", "gauge", "Start time since the epoch in seconds", self.started),
        )
        lines = []
        for name, kind, text, value in series:
            lines += [
                f"# HELP process_{name} {text} ({about}).",
                f"# TYPE process_{name} {kind}",
                f"process_{name} {float(value)!r}",
            ]
        return "\n".join(lines) + "\n"
