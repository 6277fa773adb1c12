"""Parity for the page: strangler.parity's own summary of each route, refreshed in a thread.

The figures are exactly what `strangler parity report` and the runbook's parity gate read
(`strangler.parity.summary`); example pairs are fetched one at a time when a person asks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from strangler.dashboard.reading import Dated
from strangler.parity import ParityStore, StoreError, open_store, summary

WINDOW_S = 3600.0  # the same default span as `strangler parity report`
READ_EVERY_S = 5.0
# A reading older than this means the last reads did not finish (a store that hangs): the
# page shows its figures as old, not as the live state.
STALE_AFTER_S = 3 * READ_EVERY_S
log = logging.getLogger("strangler.dashboard")


@dataclass(frozen=True)
class ParityReading(Dated):
    """Each route's parity summary (as JSON-ready data), or why there is none."""

    routes: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    at: float = 0.0
    window_s: float = WINDOW_S
    STALE_AFTER_S: ClassVar[float] = STALE_AFTER_S


def read_parity(store: ParityStore, routes: list[str], now: float) -> ParityReading:
    summaries = [summary(store, route, since=now - WINDOW_S).as_dict() for route in routes]
    return ParityReading(summaries, at=now)


class ParityWatcher:
    """The latest summaries of the table's routes; the store is opened on first use."""

    def __init__(self, location: str, routes: Callable[[], list[str]]) -> None:
        self.location = location
        self.routes = routes
        self.reading = ParityReading()
        self._store: ParityStore | None = None

    def store(self) -> ParityStore:
        if self._store is None:
            self._store = open_store(self.location)
        return self._store

    def read(self) -> ParityReading:
        try:
            return read_parity(self.store(), self.routes(), time.time())
        except StoreError as error:
            return ParityReading(error=str(error), at=time.time())
        except Exception as error:  # a store of another version, a database gone away
            log.exception("reading parity failed")
            return ParityReading(error=f"cannot read parity: {error}", at=time.time())

    def example(self, route: str, endpoint: str, path: str) -> dict[str, Any] | None:
        """The newest stored example pair of one differing field."""
        return self.store().example(route, endpoint, path)

    async def run(self) -> None:
        """Read forever (cancel the task to stop)."""
        while True:
            self.reading = await asyncio.to_thread(self.read)
            await asyncio.sleep(READ_EVERY_S)
