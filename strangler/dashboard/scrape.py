"""Scrape every proxy replica's admin /metrics once a second and keep the last minutes.

A replica that does not answer is shown as down and skipped; when it comes back, its
counters are read as counting from zero if they went down (it restarted), so a restart
never shows as negative traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import httpx

from strangler.dashboard.metrics import Scrape, Tick, add_ticks, difference, parse_scrape
from strangler.dashboard.traffic import SERIES_BINS, fold

log = logging.getLogger("strangler.dashboard")


@dataclass(frozen=True)
class Replica:
    """How the last scrape of one proxy replica went."""

    url: str
    up: bool
    error: str
    config_version: int
    breakers: dict[str, int]
    last_ok: float  # unix time, 0 = never
    store_healthy: bool = True  # the proxy reads its route store (else it serves the last table)


class MetricsCollector:
    """The ticks of all replicas summed, newest last; one instance per dashboard."""

    def __init__(self, admin_urls: list[str], interval: float = 1.0) -> None:
        self.admin_urls = admin_urls
        self.interval = interval
        self.ticks: deque[Tick] = deque(maxlen=SERIES_BINS + 1)  # one per 5 s: the charts' span
        self.replicas: dict[str, Replica] = {
            url: Replica(url, False, "not scraped yet", 0, {}, 0.0) for url in admin_urls
        }
        self._last: dict[str, tuple[float, Scrape]] = {}

    async def run(self) -> None:
        """Scrape forever (cancel the task to stop)."""
        async with httpx.AsyncClient(timeout=min(2.0, self.interval * 0.9)) as client:
            while True:
                started = time.monotonic()
                try:
                    await self.scrape_once(client)
                except Exception:  # one bad round must not stop the scraping for good
                    log.exception("scraping the proxies failed; trying again")
                await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    async def scrape_once(self, client: httpx.AsyncClient) -> None:
        now = time.time()
        answers = await asyncio.gather(*(self._fetch(client, u) for u in self.admin_urls))
        ticks = []
        for url, scrape in zip(self.admin_urls, answers, strict=True):
            if scrape is None:
                continue
            previous = self._last.get(url)
            self._last[url] = (now, scrape)
            if previous is not None:
                ticks.append(difference(previous[1], scrape, now, now - previous[0]))
        if ticks:
            fold(self.ticks, add_ticks(ticks, now, max(t.seconds for t in ticks)))

    async def _fetch(self, client: httpx.AsyncClient, url: str) -> Scrape | None:
        old = self.replicas[url]
        try:
            response = await client.get(f"{url}/metrics")
            response.raise_for_status()
            scrape = parse_scrape(response.text)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            reason = str(error) or type(error).__name__
            self.replicas[url] = Replica(url, False, reason, old.config_version, {}, old.last_ok)
            return None
        self.replicas[url] = Replica(
            url, True, "", scrape.config_version, scrape.breakers, time.time(), scrape.store_healthy
        )
        return scrape
