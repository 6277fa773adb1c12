"""Real parts for runbook tests: upstream servers, a proxy process, a route table, run stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from strangler.control import open_store
from tests.control.conftest import pg_url  # noqa: F401 - a fresh PostgreSQL database
from tests.proxy.helpers import ProxyProcess, Upstream, table


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def run_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where runs are kept: a SQLite file or a PostgreSQL database (the engine runs on both)."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@dataclass
class Shoppers:
    """Client threads browsing the route through the proxy as many different users."""

    url: str
    answers: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.threads = [
            threading.Thread(target=self._browse, args=(i,), daemon=True) for i in range(2)
        ]
        for thread in self.threads:
            thread.start()

    def _browse(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = index
            while not self.stop.is_set() and n < 200_000:
                n += 2
                try:
                    status = client.get(
                        "/api/v1/products/1", headers={"X-User-ID": f"u{n % 500}"}
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                with self.lock:
                    self.answers[status] = self.answers.get(status, 0) + 1
                self.stop.wait(0.005)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


@dataclass
class Stack:
    """Monolith and catalog upstreams behind a real proxy on a file route store."""

    monolith: Upstream
    catalog: Upstream
    proxy: ProxyProcess
    routes: Path
    parity: Path  # where the proxy compares shadowed pairs

    @property
    def metrics_url(self) -> str:
        return f"{self.proxy.admin_url}/metrics"

    def weight(self) -> float:
        store = open_store(str(self.routes))
        route = store.current().table.route("products")
        assert route is not None
        return float(route.weight)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    monolith, catalog = Upstream("monolith"), Upstream("catalog")
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table(monolith.url, catalog.url), "test", "seed")
    parity = tmp_path / "parity.sqlite3"
    proxy = ProxyProcess("--config", str(routes), extra=("--parity-store", str(parity)))
    running = Stack(monolith, catalog, proxy, routes, parity)
    try:
        yield running
    finally:
        proxy.stop()
        for upstream in {
            id(u): u for u in (monolith, catalog, running.monolith, running.catalog)
        }.values():
            upstream.kill()  # a test may have replaced one (a restarted service): kill both
