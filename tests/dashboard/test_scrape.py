"""Scraping real replicas: a proxy, a server that is not one, and a port nobody listens on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strangler.dashboard.scrape import MetricsCollector
from tests.dashboard.helpers import free_port
from tests.proxy.helpers import ProxyProcess, Upstream, backends_for, strangler, table, write_json


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyProcess, Upstream]]:
    work = tmp_path_factory.mktemp("scrape")
    monolith, catalog = Upstream("monolith"), Upstream("catalog")
    seed = write_json(work / "seed.json", table(monolith.url, catalog.url, weight=50))
    config = work / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    running = ProxyProcess("--config", str(config))
    yield running, monolith
    running.stop()
    monolith.kill()
    catalog.kill()


def scrape_twice(collector: MetricsCollector, between: object = None) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            await collector.scrape_once(client)
            if callable(between):
                await asyncio.to_thread(between)
            await collector.scrape_once(client)

    asyncio.run(go())


def test_each_replica_is_up_or_down_with_the_reason(proxy: tuple[ProxyProcess, Upstream]) -> None:
    running, not_a_proxy = proxy
    closed = f"http://127.0.0.1:{free_port()}"
    collector = MetricsCollector([running.admin_url, not_a_proxy.url, closed])
    keys = [f"k{i}" for i in range(200)]
    scrape_twice(collector, lambda: backends_for(running.url, keys))
    up, other, nobody = (collector.replicas[u] for u in collector.admin_urls)
    assert (up.up, up.config_version, up.error) == (True, 1, "")
    assert not other.up and "not a strangler proxy" in other.error
    assert not nobody.up and nobody.error
    counted = sum(collector.ticks[-1].requests.values())
    assert counted == 200  # the one real replica's requests between the two scrapes


def test_scraping_survives_a_bad_round(
    proxy: tuple[ProxyProcess, Upstream], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    running, _ = proxy
    collector = MetricsCollector([running.admin_url], interval=0.05)
    rounds = []

    async def flaky(client: httpx.AsyncClient) -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise OSError("too many open files")  # what a bad moment looks like
        if len(rounds) == 3:
            raise asyncio.CancelledError

    monkeypatch.setattr(collector, "scrape_once", flaky)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(collector.run())
    assert rounds == [0, 1, 2]  # the loop went on after the failure
