"""Gates read from a real Prometheus server scraping the real proxy (Debian's prometheus)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from strangler.control import open_store
from strangler.runbook import builtin
from strangler.runbook.definition import Gate
from strangler.runbook.engine import Engine
from strangler.runbook.sources import Environment, ProxyReader, Window, evaluate
from strangler.runbook.store import RunStore
from tests.cdc.harness import free_port
from tests.proxy.helpers import ProxyProcess, table
from tests.runbook.conftest import Shoppers, Stack
from tests.runbook.test_hostile import failing_service

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="needs prometheus")


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[str]:
    with scraping([stack.proxy.admin_url], tmp_path) as url:
        yield url


@contextmanager
def scraping(admin_urls: list[str], tmp_path: Path, every_s: int = 1) -> Iterator[str]:
    """A Prometheus server scraping these proxies' admin listeners every `every_s`: its URL."""
    targets = ", ".join(f"'{u.removeprefix('http://')}'" for u in admin_urls)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {every_s}s, evaluation_interval: {every_s}s}}\n"
        "scrape_configs:\n"
        f"  - job_name: proxy\n    static_configs: [{{targets: [{targets}]}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_rollback_route_confirms_the_monolith_has_the_traffic_through_prometheus(
    stack: Stack, prometheus: str, tmp_path: Path
):
    open_store(str(stack.routes)).set_weight("products", 40, "test", "canary")
    shoppers = Shoppers(stack.proxy.url)
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    try:
        time.sleep(3)  # Prometheus has seen the service take traffic
        text = builtin.text("rollback-route")
        runbook = builtin.resolve("rollback-route", {"route": "products"})
        env = Environment(routes=str(stack.routes), prometheus=prometheus)
        run = store.create(
            runbook.name,
            "builtin:rollback-route",
            text,
            {"route": "products"},
            env.to_json(),
            runbook.steps[0].id,
            "oncall",
            "5xx",
        )
        lines: list[str] = []
        done = Engine(store, run.id, "oncall", lines.append).run()
        assert done.state == "done", "\n".join(lines)
        assert stack.weight() == 0
        rounds = [e for e in store.events(run.id) if e.kind == "gates"]
        final = rounds[-1].data["evaluations"][0]
        assert final["outcome"] == "pass"
        assert final["source"] == f"prometheus {prometheus}"
        assert final["samples"]["monolith_requests"] >= 20
        assert final["samples"]["service_requests"] == 0
    finally:
        shoppers.finish()
        store.close()


def query(url: str, promql: str) -> list[dict]:
    return httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()["data"][
        "result"
    ]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.2)


def test_a_replica_prometheus_cannot_scrape_is_no_data_not_a_smaller_sum(
    stack: Stack, tmp_path: Path
):
    # Two replicas; the second one stops answering Prometheus. Its traffic (which might go
    # to the service) is then missing from every sum: the gate must not pass on the rest.
    second = ProxyProcess("--config", str(stack.routes))
    down = second.admin_url.removeprefix("http://")
    shoppers = Shoppers(stack.proxy.url)
    try:
        with scraping([stack.proxy.admin_url, second.admin_url], tmp_path) as url:
            versions = "strangler_proxy_config_version"
            wait_until(lambda: len(query(url, versions)) == 2, "both replicas scraped")
            second.stop()
            wait_until(lambda: bool(query(url, f'up{{instance="{down}"}} == 0')), "seen down")
            env = Environment(routes=str(stack.routes), prometheus=url)
            gate = Gate("traffic_on_monolith", {"route": "products", "min_requests": 5})
            found = evaluate(gate, env, Window({"at": time.time() - 10}))
    finally:
        shoppers.finish()
        if second.proc.poll() is None:
            second.stop()
    assert found.outcome == "inconclusive", found
    assert down in found.reason


def test_errors_in_a_series_first_seen_in_the_window_are_counted(stack: Stack, tmp_path: Path):
    # The service answers 200, then starts failing: its 5xx and fallback series first appear
    # inside the window. increase() needs two samples of a series and never counts the
    # first one's value, so those errors were invisible for a scrape interval (and the
    # first interval's errors undercounted after that): the error rate gate passed.
    failing = threading.Event()
    service = failing_service(failing)
    routes = table(stack.monolith.url, service.url, weight=50)
    routes["backends"]["catalog"]["breaker_cooldown"] = 60.0
    open_store(str(stack.routes)).apply(routes, "test", "half on a service about to fail")
    shoppers = Shoppers(stack.proxy.url)
    try:
        with scraping([stack.proxy.admin_url], tmp_path, every_s=3) as url:
            served = 'strangler_proxy_requests_total{backend="catalog"}[10s]'
            wait_until(lambda: [len(r["values"]) for r in query(url, served)] >= [2], "scraped")
            env = Environment(routes=str(stack.routes), prometheus=url)
            window = Window(ProxyReader(env).baseline())
            time.sleep(7)  # two scrapes of the healthy service inside the window
            failing.set()
            failed = 'strangler_proxy_fallbacks_total{route="products"}'
            wait_until(lambda: bool(query(url, failed)), "the first failures scraped")
            gate = Gate("error_rate", {"route": "products", "max_delta": 0.05, "min_requests": 5})
            found = evaluate(gate, env, window)
    finally:
        shoppers.finish()
        service.stop()
    assert found.outcome == "fail", found


def test_a_prometheus_that_scrapes_no_proxy_says_so(tmp_path: Path):
    # An empty answer to every query: not "no requests" but a Prometheus that is not
    # scraping the proxies at all (a wrong URL, a job missing from its config).
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:1", "http://127.0.0.1:2"), "t", "")
    with scraping([], tmp_path) as url:
        env = Environment(routes=str(routes), prometheus=url)
        for gate in (
            Gate("service_error_rate", {"route": "products", "max_rate": 0.1, "min_requests": 5}),
            Gate("breaker_closed", {"route": "products"}),
        ):
            found = evaluate(gate, env, Window({"at": time.time()}))
            assert found.outcome == "inconclusive", found
            assert "no strangler proxy" in found.reason, found.reason
