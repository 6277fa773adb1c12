"""Shadow traffic through the real proxy process: never delays or alters the client's answer,
bounded when the candidate is slow, and every shadowed pair compared into the parity store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from strangler.parity import open_store, summary
from strangler.proxy.mirror import PairHandOff
from tests.parity.shop_servers import Behaviour, serve
from tests.proxy.helpers import ProxyProcess, write_json

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.slow  # real proxy processes, a worker process each


def routes(monolith: str, candidate: str, **shadow) -> dict:
    return {
        "default_backend": "monolith",
        "backends": {"monolith": {"url": monolith}, "catalog": {"url": candidate}},
        "routes": [{"id": "products", "prefix": "/api/v1/products", "monolith": "monolith",
                    "service": "catalog", "weight": 0, "sticky": ["header:X-User-ID"],
                    "shadow": {"percent": 100, **shadow}}],
    }  # fmt: skip


@pytest.fixture
def shadowing(tmp_path):
    """Start monolith and candidate servers and a proxy shadowing onto the candidate."""
    started = []

    def start(monolith: Behaviour, candidate: Behaviour, *extra: str, **shadow) -> ProxyProcess:
        servers = [serve(monolith), serve(candidate)]
        urls = [s.__enter__() for s in servers]
        config = write_json(tmp_path / "routes.json", routes(*urls, **shadow))
        sink = (
            ()
            if "--parity-broker" in extra
            else ("--parity-store", str(tmp_path / "parity.sqlite3"))
        )
        proxy = ProxyProcess("--config", str(config), extra=(*sink, *extra))
        started.append((proxy, servers))
        return proxy

    yield start
    for proxy, servers in started:
        proxy.stop()
        for s in servers:
            s.__exit__(None, None, None)


def wait_for_samples(tmp_path, count: int, route: str = "products"):
    """The route's summary once `count` exchanges are stored, compared or not (bounded: the
    parity worker is a spawned process, slow to start on a busy machine)."""
    for _ in range(600):
        path = tmp_path / "parity.sqlite3"
        if path.exists():
            store = open_store(str(path))
            try:
                result = summary(store, route, since=0, examples=True)
            finally:
                store.close()
            if result.samples + result.skipped >= count:
                return result
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} comparisons stored")


def shadow_metric(proxy: ProxyProcess, outcome: str, expected: int) -> int:
    """strangler_proxy_shadow_total for `outcome` on the proxy's /metrics, once it reaches
    `expected` or after 10 s (the mirror process reports its counts every 0.1 s)."""
    value = 0
    for _ in range(100):
        text = httpx.get(f"{proxy.admin_url}/metrics", timeout=10).text
        value = sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("strangler_proxy_shadow_total") and f'outcome="{outcome}"' in line
        )
        if value >= expected:
            break
        time.sleep(0.1)
    return value


def mirror_pid(proxy: ProxyProcess, other_than: int = 0) -> int:
    """The pid of the proxy's mirror process (a spawned child), once there is one other than
    `other_than` (bounded): a killed one is started again once the proxy sees it gone."""
    children = Path(f"/proc/{proxy.proc.pid}/task/{proxy.proc.pid}/children")
    for _ in range(200):
        for pid in map(int, children.read_text().split()):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if pid != other_than and status != "Z" and b"spawn_main" in cmdline:
                    return pid
        time.sleep(0.05)
    raise AssertionError("no mirror process")


def test_a_slow_candidate_never_delays_the_clients_answer(shadowing, tmp_path):
    hold = threading.Event()
    candidate = Behaviour(hold=hold)
    proxy = shadowing(Behaviour(), candidate, timeout=30)
    try:
        answer = httpx.get(f"{proxy.url}/api/v1/products?page=1", headers={"X-User-ID": "u1"},
                           timeout=10)  # fmt: skip
        # The candidate has the shadow request and has not answered it: the client already has
        # its complete answer from the monolith.
        assert candidate.arrived.wait(10)
        assert answer.status_code == 200 and answer.headers["x-strangler-backend"] == "monolith"
        assert len(answer.json()["results"]) == 10
    finally:
        hold.set()
    assert wait_for_samples(tmp_path, 1).samples == 1


def test_a_candidate_answering_500_is_recorded_never_a_client_error(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour(status=500))
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        codes = {client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"u{n}"}).status_code
                 for n in range(20)}  # fmt: skip
    assert codes == {200}
    result = wait_for_samples(tmp_path, 20)
    (endpoint,) = result.endpoints
    assert endpoint.endpoint == "GET /api/v1/products/{id}"
    assert endpoint.statuses == ((200, 500, 20),)
    # (A timestamp can be a regression too here: 20 requests give about 5 secondary
    # readings, too few to cancel a field that differs on every request; docs/parity.md.)
    assert {f.path: f for f in endpoint.fields}["status"].regression


@pytest.mark.parametrize("noise_percent", [100, 50])
def test_noise_is_learned_and_a_real_difference_reported_with_an_example(
    shadowing, tmp_path, noise_percent
):
    proxy = shadowing(Behaviour(), Behaviour(price_bug=0.3), noise_percent=noise_percent)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for n in range(40):
            assert client.get(f"/api/v1/products?page={n}", headers={"X-User-ID": f"u{n}"}
                              ).status_code == 200  # fmt: skip
    result = wait_for_samples(tmp_path, 40)
    (endpoint,) = result.endpoints
    fields = {f.path: f for f in endpoint.fields}
    assert fields["results[*].price"].regression
    assert fields["results[*].price"].example["candidate"]["body"].count(".99") > 0
    assert not fields["request_id"].regression and not fields["generated_at"].regression
    # The second monolith call goes out for noise_percent of the shadowed requests; noise
    # counts are scaled to all of them, so the same fields are learned from a sample.
    if noise_percent == 100:
        assert endpoint.noise_samples == 40
    else:
        assert 0 < endpoint.noise_samples < 40


def test_answers_framed_by_closing_the_connection_are_whole_answers_on_every_side(
    shadowing, tmp_path
):
    """HTTP/1.1 lets a body end with the connection (no Content-Length, no chunks): the
    client gets such a monolith answer whole, so the candidate's and the secondary's are
    whole answers too, never failed calls (every noise reading lost, every request a
    candidate error)."""
    proxy = shadowing(Behaviour(until_close=True), Behaviour(until_close=True),
                      noise_percent=100)  # fmt: skip
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for n in range(5):
            answer = client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"e{n}"})
            assert answer.status_code == 200 and answer.json()["id"] == n
    result = wait_for_samples(tmp_path, 5)
    assert shadow_metric(proxy, "sent", 5) == 5
    assert shadow_metric(proxy, "candidate_failed", 0) == 0
    assert shadow_metric(proxy, "secondary_failed", 0) == 0
    (endpoint,) = result.endpoints
    assert endpoint.statuses == ((200, 200, 5),) and endpoint.noise_samples == 5
    assert not any(f.regression for f in endpoint.fields)


def test_shadow_requests_are_marked_and_clients_cannot_forge_the_mark(shadowing, tmp_path):
    monolith, candidate = Behaviour(), Behaviour()
    proxy = shadowing(monolith, candidate, noise_percent=100)
    httpx.get(f"{proxy.url}/api/v1/products/1", timeout=10,
              headers={"X-User-ID": "u", "X-Strangler-Shadow": "1"})  # fmt: skip
    wait_for_samples(tmp_path, 1)
    marks = sorted(h.get("X-Strangler-Shadow", "") for _, _, h in monolith.seen)
    assert marks == ["", "1"]  # the client's request without the forged mark; the noise call
    assert [h.get("X-Strangler-Shadow") for _, _, h in candidate.seen] == ["1"]


def test_writes_are_not_shadowed_by_default(shadowing, tmp_path):
    monolith, candidate = Behaviour(), Behaviour()
    proxy = shadowing(monolith, candidate)
    assert httpx.post(f"{proxy.url}/api/v1/products", json={}, timeout=10,
                      headers={"X-User-ID": "u"}).status_code == 200  # fmt: skip
    httpx.get(f"{proxy.url}/api/v1/products/2", headers={"X-User-ID": "u"}, timeout=10)
    wait_for_samples(tmp_path, 1)
    assert [m for m, _, _ in candidate.seen] == ["GET"]
    assert [m for m, _, _ in monolith.seen].count("POST") == 1


def test_shadow_calls_in_flight_are_bounded_and_overflow_counted(shadowing, tmp_path):
    hold = threading.Event()
    proxy = shadowing(Behaviour(), Behaviour(hold=hold), max_in_flight=3, timeout=30)
    try:
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            for n in range(30):
                assert client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"u{n}"}
                                  ).status_code == 200  # fmt: skip
        # Three in flight, three waiting for a slot, the rest dropped.
        dropped = shadow_metric(proxy, "dropped_in_flight", 24)
        time.sleep(0.3)  # a count past 24 would have been reported by now
        assert shadow_metric(proxy, "dropped_in_flight", 24) == dropped == 24
    finally:
        hold.set()
    assert wait_for_samples(tmp_path, 6).samples == 6


def test_the_hand_off_to_the_comparison_thread_is_bounded():
    release = threading.Event()
    taken: list[int] = []

    def slow_consumer(batch):
        release.wait(10)
        taken.extend(p["n"] for p in batch)

    hand_off = PairHandOff(slow_consumer, size=5)
    accepted = [hand_off.offer({"route": "r", "n": n}) for n in range(50)]
    release.set()
    hand_off.close()
    # The consumer holds at most one batch while the queue holds `size`; the rest is refused.
    assert sum(accepted) <= 1 + 5 and accepted.count(False) >= 44
    assert sorted(taken) == [n for n, ok in enumerate(accepted) if ok]


def test_a_recorded_share_goes_to_a_har_with_secrets_redacted(shadowing, tmp_path):
    har = tmp_path / "shadow.har"
    proxy = shadowing(Behaviour(), Behaviour(), "--record-har", str(har), record_percent=100,
                      redact=["request_id"])  # fmt: skip
    httpx.get(f"{proxy.url}/api/v1/products/3", timeout=10,
              headers={"X-User-ID": "u", "Authorization": "Bearer secret-token"})  # fmt: skip
    wait_for_samples(tmp_path, 1)
    for _ in range(100):
        if har.exists():
            break
        time.sleep(0.05)
    (entry,) = json.loads(har.read_text())["log"]["entries"]
    headers = {h["name"].lower(): h["value"] for h in entry["request"]["headers"]}
    assert headers["authorization"] == "[redacted]"
    body = json.loads(entry["response"]["content"]["text"])
    assert body["request_id"] == "[redacted]" and body["id"] == 3


def test_pairs_go_to_celery_workers_over_redis(shadowing, tmp_path, monkeypatch):
    """Production wiring: the proxy publishes pair batches to Redis; a real Celery worker
    compares them into the store (the machine's Redis; a queue of the test's own)."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    queue = f"strangler-parity-test-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "parity.sqlite3"
    env = {**os.environ, "STRANGLER_PARITY_BROKER": REDIS_URL, "STRANGLER_PARITY_QUEUE": queue,
           "STRANGLER_PARITY_STORE": str(store)}  # fmt: skip
    monkeypatch.setenv("STRANGLER_PARITY_QUEUE", queue)  # read by the proxy's publisher
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "strangler.parity.tasks", "worker", "--pool",
         "solo", "-Q", queue, "--loglevel", "warning", "--without-heartbeat", "--without-gossip",
         "--without-mingle"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        proxy = shadowing(Behaviour(), Behaviour(price_bug=0.5), "--parity-broker", REDIS_URL,
                          noise_percent=100)  # fmt: skip
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            for n in range(10):
                client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"u{n}"})
        result = wait_for_samples(tmp_path, 10)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    (endpoint,) = result.endpoints
    assert endpoint.samples == 10 and endpoint.noise_samples == 10
    assert any(f.path == "price" for f in endpoint.fields)


def test_pairs_a_broker_that_is_down_never_took_are_counted_on_the_proxy(shadowing, tmp_path):
    """The Celery publisher keeps no count of its own: a batch it could not publish (the
    broker down) is counted dropped on the proxy's /metrics, not only in its log."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once it is closed
    proxy = shadowing(Behaviour(), Behaviour(), "--parity-broker", f"redis://127.0.0.1:{port}/0")
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for n in range(5):
            assert client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"b{n}"}
                              ).status_code == 200  # fmt: skip
    assert shadow_metric(proxy, "sent", 5) == 5
    for _ in range(3):  # kombu tries the broker a few times before it gives a batch up
        if shadow_metric(proxy, "dropped_hand_off", 5) == 5:
            break
    assert shadow_metric(proxy, "dropped_hand_off", 5) == 5


def test_a_killed_parity_worker_is_started_again(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour())
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        client.get("/api/v1/products/1", headers={"X-User-ID": "a"})
        wait_for_samples(tmp_path, 1)
        worker = mirror_pid(proxy)
        os.kill(worker, signal.SIGKILL)
        # Pairs written to it between the kill and the proxy seeing it gone are lost (and
        # counted: see test_shadow_limits); from then on they wait for the new one.
        mirror_pid(proxy, other_than=worker)
        for n in range(2, 12):
            assert (
                client.get(f"/api/v1/products/{n}", headers={"X-User-ID": "a"}).status_code == 200
            )
            time.sleep(0.05)  # spread over several hand-off batches
    # The first batch after the kill finds the worker gone and starts another one.
    assert wait_for_samples(tmp_path, 11).samples == 11


def test_the_parity_worker_counts_comparisons_on_its_metrics_port(shadowing, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = shadowing(Behaviour(), Behaviour(status=500), "--parity-metrics", f"127.0.0.1:{port}")
    for n in range(3):
        httpx.get(f"{proxy.url}/api/v1/products/{n}", headers={"X-User-ID": "m"}, timeout=10)
    wait_for_samples(tmp_path, 3)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert (
        'strangler_parity_comparisons_total{endpoint="GET /api/v1/products/{id}",'
        'outcome="different",route="products"} 3.0'
    ) in text


def test_a_write_is_mirrored_with_its_body_to_a_named_sandbox_only(shadowing, tmp_path):
    monolith, sandbox = Behaviour(), Behaviour()
    proxy = shadowing(monolith, sandbox, methods=["GET", "POST"], sandbox="catalog",
                      noise_percent=100)  # fmt: skip
    body = json.dumps({"sku": "X-1", "qty": 2}).encode()
    answer = httpx.post(f"{proxy.url}/api/v1/products", content=body, timeout=10,
                        headers={"X-User-ID": "w", "content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 200
    wait_for_samples(tmp_path, 1)
    assert [m for m, _, _ in sandbox.seen] == ["POST"] and sandbox.bodies == [body]
    assert sandbox.seen[0][2]["X-Strangler-Shadow"] == "1"
    assert [m for m, _, _ in monolith.seen] == ["POST"]  # never a second write for noise
