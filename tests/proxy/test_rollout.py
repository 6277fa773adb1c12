"""Shifting a route's traffic through real proxy processes: accuracy, stickiness, flips, faults."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.proxy.helpers import (
    ProxyProcess,
    Upstream,
    backends_for,
    proxy_for,
    strangler,
    table,
    write_json,
)

KEYS = [f"user-{i}" for i in range(10000)]


def test_split_is_accurate_and_sticky_across_restarts_and_processes(upstreams, tmp_path):
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 25))
    first = ProxyProcess("--config", str(config))
    second = ProxyProcess("--config", str(config))
    try:
        seen = backends_for(first.url, KEYS)
        share = Counter(seen.values())["catalog"] / len(KEYS)
        assert 0.235 <= share <= 0.265, share
        sample = KEYS[:2000]
        assert backends_for(second.url, sample) == {k: seen[k] for k in sample}
        first.stop()
        restarted = ProxyProcess("--config", str(config))
        try:
            assert backends_for(restarted.url, sample) == {k: seen[k] for k in sample}
        finally:
            restarted.stop()
    finally:
        first.stop()
        second.stop()


def test_raising_the_weight_never_moves_a_user_back(upstreams, tmp_path):
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 0))
    proxy = ProxyProcess("--config", str(config))
    keys = KEYS[:2000]
    try:
        on_service: set[str] = set()
        for weight in (5, 25, 50, 100):
            result = strangler(
                "route",
                "weight",
                "products",
                str(weight),
                "--config",
                str(config),
                "--json",
                "--why",
                "ramp",
            )
            assert result.returncode == 0, result.stderr
            proxy.wait_for_version(json.loads(result.stdout)["version"])
            now = {k for k, b in backends_for(proxy.url, keys).items() if b == "catalog"}
            assert on_service <= now, f"{len(on_service - now)} users moved back at {weight}"
            assert abs(len(now) / len(keys) - weight / 100) < 0.04
            on_service = now
        assert on_service == set(keys)
    finally:
        proxy.stop()


class Load:
    """A bounded client load on the proxy, counting every answer and every failure."""

    def __init__(self, url: str, threads: int = 3, limit: int = 4000) -> None:
        self.url, self.limit = url, limit
        self.statuses: Counter[int] = Counter()
        self.backends: Counter[str] = Counter()
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for n in range(self.limit):
                if self.stop.is_set():
                    return
                try:
                    r = client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"u{index}-{n}"})
                except httpx.HTTPError as error:
                    with self.lock:
                        self.errors.append(repr(error))
                    continue
                with self.lock:
                    self.statuses[r.status_code] += 1
                    self.backends[r.headers.get("x-strangler-backend", "?")] += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    @property
    def failed(self) -> int:
        return len(self.errors) + sum(n for s, n in self.statuses.items() if s != 200)

    @property
    def total(self) -> int:
        return len(self.errors) + sum(self.statuses.values())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_twenty_flips_under_load_fail_no_request(kind, upstreams, tmp_path, request):
    monolith, catalog = upstreams
    initial = write_json(tmp_path / "initial.json", table(monolith.url, catalog.url, 0))
    if kind == "file":
        store = ("--config", str(tmp_path / "routes.toml"))
    else:
        store = ("--database-url", request.getfixturevalue("pg_url"))
    assert strangler("route", "set", str(initial), *store, "--why", "initial").returncode == 0
    proxy = ProxyProcess(*store)
    load = Load(proxy.url)
    try:
        version = 1
        for i in range(20):
            weight = [5, 25, 50, 100, 0][i % 5]
            result = strangler(
                "route",
                "weight",
                "products",
                str(weight),
                *store,
                "--json",
                "--who",
                "test",
                "--why",
                f"flip {i}",
            )
            assert result.returncode == 0, result.stderr
            version = json.loads(result.stdout)["version"]
            time.sleep(0.05)
        proxy.wait_for_version(version, timeout=5)  # a bounded wait, not a timing check
    finally:
        load.finish()
        proxy.stop()
    assert load.total > 100
    assert load.failed == 0, (load.statuses, load.errors[:5])
    assert load.backends["catalog"] > 0 and load.backends["monolith"] > 0
    history = strangler("route", "history", *store, "--json", "--limit", "50")
    assert len(json.loads(history.stdout)["versions"]) == 21


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        "^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if wanted else "") + r" (\S+)"
    )
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_killed_service_opens_the_breaker_and_gets_fall_back_to_the_monolith(upstreams, tmp_path):
    monolith, _ = upstreams
    catalog = Upstream("catalog")  # our own, to kill
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 50))
    proxy = ProxyProcess("--config", str(config))
    load = Load(proxy.url, threads=2, limit=20000)
    try:
        time.sleep(0.5)
        catalog.kill()
        time.sleep(1.0)
        during = proxy.metrics()
        assert metric(during, "strangler_proxy_breaker_state", backend="catalog") >= 1
        catalog.start()  # same port; the breaker's half-open probe finds it back
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if metric(proxy.metrics(), "strangler_proxy_breaker_state", backend="catalog") == 0:
                break
            time.sleep(0.1)
        before = after = load.backends["catalog"]
        deadline = time.monotonic() + 5
        while after == before and time.monotonic() < deadline:
            time.sleep(0.1)
            after = load.backends["catalog"]
    finally:
        load.finish()
        final = proxy.metrics()
        proxy.stop()
        catalog.kill()
    assert metric(final, "strangler_proxy_breaker_state", backend="catalog") == 0
    assert after > before, "traffic went back to the service once it recovered"
    fallbacks = sum(
        float(v)
        for v in re.findall(
            r'strangler_proxy_fallbacks_total\{route="products",reason="[^"]+"\} (\S+)', final
        )
    )
    assert fallbacks > 0
    # Stated bound: GETs fall back, so a killed service costs at most 0.5% failed requests.
    assert load.failed <= 0.005 * load.total, (load.statuses, load.errors[:5])


def test_an_invalid_table_is_rejected_and_the_old_one_keeps_serving(upstreams, tmp_path):
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 100))
    proxy = ProxyProcess("--config", str(config))
    try:
        bad = write_json(
            tmp_path / "bad.json", table(monolith.url, catalog.url, 250, service="catalgo")
        )
        pushed = strangler("route", "set", str(bad), "--config", str(config))
        assert pushed.returncode == 2
        assert "route.E007" in pushed.stderr and "route.E008" in pushed.stderr
        assert "'catalgo'" in pushed.stderr and "nothing changed" in pushed.stderr
        config.write_text("{ this is not json")  # a broken hand edit
        time.sleep(0.8)
        r = httpx.get(f"{proxy.url}/api/v1/products/1")
        assert r.status_code == 200 and r.headers["x-strangler-backend"] == "catalog"
        metrics = proxy.metrics()
        assert metric(metrics, "strangler_proxy_config_rejections_total") >= 1
        assert metric(metrics, "strangler_proxy_config_version") == 1
    finally:
        proxy.stop()


def test_admin_api_needs_the_token_and_flips_with_it(upstreams, tmp_path):
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 0))
    proxy = ProxyProcess("--config", str(config))
    try:
        api = f"{proxy.admin_url}/api"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": proxy.token}):
            r = httpx.post(f"{api}/routes/products/weight", json={"weight": 100}, headers=headers)
            assert r.status_code == 401
        assert httpx.get(f"{api}/routes").status_code == 401
        assert proxy.version() == 1
        auth = {"Authorization": f"Bearer {proxy.token}", "X-Strangler-Actor": "ops"}
        r = httpx.post(
            f"{api}/routes/products/weight", json={"weight": 100, "why": "go"}, headers=auth
        )
        assert r.status_code == 200 and r.json()["version"] == 2
        proxy.wait_for_version(2)
        answer = httpx.get(f"{proxy.url}/api/v1/products")
        assert answer.headers["x-strangler-backend"] == "catalog", "the flip is in force"
        assert proxy.version() == 2, "and the version in force is the flip's"
        bad = httpx.post(f"{api}/routes/products/weight", json={"weight": 1000}, headers=auth)
        assert bad.status_code == 422 and bad.json()["errors"][0]["id"] == "route.E008"
        history = httpx.get(f"{api}/history", headers=auth).json()["versions"]
        assert (history[0]["who"], history[0]["why"]) == ("ops", "go")
        r = httpx.post(f"{api}/rollback", json={"version": 1, "why": "back"}, headers=auth)
        assert r.status_code == 200 and r.json()["version"] == 3
    finally:
        proxy.stop()


def test_admin_api_pushes_tables_shows_routes_and_says_409_when_the_table_moved(
    upstreams, tmp_path
):
    monolith, catalog = upstreams
    proxy = proxy_for(upstreams, tmp_path)
    try:
        api = f"{proxy.admin_url}/api"
        auth = {"Authorization": f"Bearer {proxy.token}", "X-Strangler-Actor": "ops"}
        r = httpx.get(f"{api}/routes/products", headers=auth)
        assert r.status_code == 200
        assert (r.json()["version"], r.json()["route"]["weight"]) == (1, 0)
        assert httpx.get(f"{api}/routes/nope", headers=auth).status_code == 404
        pushed = table(monolith.url, catalog.url, 40)
        r = httpx.put(
            f"{api}/routes", json={"table": pushed, "why": "40%", "expect": 1}, headers=auth
        )
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        assert httpx.get(f"{api}/routes/products", headers=auth).json()["route"]["weight"] == 40
        stale = httpx.put(f"{api}/routes", json={"table": pushed, "expect": 1}, headers=auth)
        assert stale.status_code == 409 and "version 2, not 1" in stale.json()["error"]
        broken = httpx.put(f"{api}/routes", json={"table": {"routes": []}}, headers=auth)
        assert broken.status_code == 422 and broken.json()["errors"][0]["id"].startswith("route.E")
        current = httpx.get(f"{api}/routes", headers=auth).json()
        assert (current["version"], current["who"], current["why"]) == (2, "ops", "40%")
        proxy.wait_for_version(2)
        assert proxy.version() == 2, "neither the stale nor the broken push took effect"
    finally:
        proxy.stop()


def test_parallel_api_flips_of_different_routes_all_land(upstreams, tmp_path):
    monolith, catalog = upstreams
    raw = table(monolith.url, catalog.url, 0)
    route = raw["routes"][0]
    raw["routes"] = [{**route, "id": f"r{i}", "prefix": f"/api/v1/r{i}"} for i in range(10)]
    proxy = ProxyProcess("--config", str(write_json(tmp_path / "routes.json", raw)))
    try:
        auth = {"Authorization": f"Bearer {proxy.token}"}

        def flip(i: int) -> int:
            url = f"{proxy.admin_url}/api/routes/r{i}/weight"
            return httpx.post(url, json={"weight": 10 + i}, headers=auth, timeout=30).status_code

        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(flip, range(10)))
        assert statuses == [200] * 10
        current = httpx.get(f"{proxy.admin_url}/api/routes", headers=auth).json()
        assert {r["id"]: r["weight"] for r in current["table"]["routes"]} == {
            f"r{i}": 10 + i for i in range(10)
        }
        assert current["version"] == 11
    finally:
        proxy.stop()


def test_healthz_says_degraded_while_the_route_file_cannot_be_read(upstreams, tmp_path):
    proxy = proxy_for(upstreams, tmp_path)
    config = tmp_path / "routes.json"
    health = f"{proxy.admin_url}/healthz"
    try:
        assert httpx.get(health).json() == {"status": "ok", "version": 1}
        text = config.read_text()
        config.unlink()
        degraded = poll(lambda: httpx.get(health).json(), lambda h: h["status"] == "degraded")
        assert degraded["version"] == 1 and "cannot read" in degraded["problem"]
        assert "strangler_proxy_route_store_healthy 0" in proxy.metrics()
        served = httpx.get(f"{proxy.url}/api/v1/products/1")
        assert served.status_code == 200, "the last good table keeps serving"
        config.write_text(text)
        assert poll(lambda: httpx.get(health).json(), lambda h: h["status"] == "ok")["version"] == 1
    finally:
        proxy.stop()


def poll(read, done, attempts: int = 100):
    """Read until `done(value)`, at most `attempts` times 0.05 s apart; fails the test after."""
    for _ in range(attempts):
        value = read()
        if done(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"still {value!r}")
