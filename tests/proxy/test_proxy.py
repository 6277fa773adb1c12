"""One proxy process in front of real upstreams: hygiene, limits, errors, shutdown, logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strangler.proxy.processes import tree
from tests.proxy.helpers import (
    ProxyProcess,
    backends_for,
    children_of,
    proxy_for,
    raw_request,
    table,
    wait_in_flight,
    write_json,
)

SECRET = "tester-secret-0123456789"


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory) -> Iterator[ProxyProcess]:
    monolith, catalog = upstreams
    work = tmp_path_factory.mktemp("proxy")
    raw = table(
        monolith.url, catalog.url, 0, override={"header": "X-Strangler-Force", "secret": SECRET}
    )
    raw["backends"]["monolith"]["timeout"] = 1.0
    raw["backends"]["down"] = {"url": "http://127.0.0.1:9", "connect_timeout": 0.5}
    raw["routes"].append(
        {"id": "legacy", "prefix": "/legacy", "monolith": "down", "service": "catalog", "weight": 0}
    )
    raw["settings"] = {"max_header_bytes": 4096, "max_body_bytes": 50000}
    config = write_json(work / "routes.json", raw)
    process = ProxyProcess("--config", str(config), log_path=work / "access.log")
    process.log_path = work / "access.log"  # type: ignore[attr-defined]
    yield process
    process.stop()


def echo(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def test_forwarding_headers_are_added_and_hop_by_hop_ones_removed(proxy):
    r = httpx.get(
        f"{proxy.url}/api/v1/products/1?q=2",
        headers={
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret",
            "Keep-Alive": "300",
            "X-Forwarded-For": "203.0.113.9",
            "X-Request-ID": "req-42",
            "Host": "shop.test",
        },
    )
    seen = echo(r)["headers"]
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http" and seen["x-forwarded-host"] == "shop.test"
    assert seen["host"] == "shop.test"
    assert "x-hop" not in seen and "keep-alive" not in seen
    assert seen["x-request-id"] == "req-42" and r.headers["x-request-id"] == "req-42"
    assert echo(r)["path"] == "/api/v1/products/1?q=2"
    generated = echo(httpx.get(f"{proxy.url}/x"))["headers"]["x-request-id"]
    assert len(generated) == 32


def test_the_host_header_cannot_pick_an_upstream(proxy, upstreams):
    _, catalog = upstreams
    r = httpx.get(f"{proxy.url}/anything", headers={"Host": f"127.0.0.1:{catalog.port}"})
    assert r.headers["x-strangler-backend"] == "monolith"
    r = httpx.get(f"{proxy.url}/http://127.0.0.1:{catalog.port}/")
    assert r.headers["x-strangler-backend"] == "monolith"


def test_override_forces_a_backend_only_with_the_secret(proxy):
    forced = httpx.get(
        f"{proxy.url}/api/v1/products", headers={"X-Strangler-Force": f"service:{SECRET}"}
    )
    assert forced.headers["x-strangler-backend"] == "catalog"
    assert "x-strangler-force" not in echo(forced)["headers"], "the secret never leaves"
    guessed = httpx.get(
        f"{proxy.url}/api/v1/products", headers={"X-Strangler-Force": "service:letmein"}
    )
    assert guessed.headers["x-strangler-backend"] == "monolith"


@pytest.mark.parametrize("path", ["/other", "/api/v1/productsX"])
def test_the_override_secret_never_leaves_on_any_request(proxy, path):
    """The override header was removed only on a request its own route matched: a tester
    whose browser sends it on every request leaked the secret to the monolith's logs from
    every other page."""
    sent = httpx.get(f"{proxy.url}{path}", headers={"X-Strangler-Force": f"service:{SECRET}"})
    assert "x-strangler-force" not in echo(sent)["headers"]


@pytest.mark.parametrize("declared", [b"0", b"00", b"007"])
def test_a_declared_length_goes_upstream_as_a_number(proxy, declared):
    """A POST with Content-Length: 0 went upstream with no length at all (RFC 9110 8.6: a
    user agent sends it for a method that defines a body; strict servers answer 411), while
    "00" was passed on as written and read as a request with a body."""
    body = b"x" * int(declared)
    answer = raw_request(
        proxy,
        b"POST /x HTTP/1.1\r\nHost: shop\r\nConnection: close\r\nContent-Length: "
        + declared + b"\r\n\r\n" + body,
    )  # fmt: skip
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    seen = json.loads(payload)
    assert seen["headers"]["content-length"] == str(int(declared))
    assert seen["body_len"] == len(body)


def test_a_forwarded_proto_from_the_load_balancer_in_front_is_kept(proxy):
    """TLS ends at the load balancer in front: its X-Forwarded-Proto: https was replaced with
    http, so a Django backend with SECURE_PROXY_SSL_HEADER redirected https requests forever.
    A value that is no scheme is replaced with the proxy's own."""
    kept = echo(httpx.get(f"{proxy.url}/x", headers={"X-Forwarded-Proto": "https"}))
    assert kept["headers"]["x-forwarded-proto"] == "https"
    for bogus in ("javascript", "https, http", ""):
        replaced = echo(httpx.get(f"{proxy.url}/x", headers={"X-Forwarded-Proto": bogus}))
        assert replaced["headers"]["x-forwarded-proto"] == "http", bogus


def test_bodies_stream_both_ways_with_length_or_chunks(proxy):
    r = httpx.post(f"{proxy.url}/api/v1/products", content=b"x" * 40000)
    assert echo(r)["body_len"] == 40000
    r = httpx.post(f"{proxy.url}/api/v1/products", content=iter([b"a" * 1000] * 20))
    assert echo(r)["body_len"] == 20000
    head = httpx.head(f"{proxy.url}/api/v1/products")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
def test_responses_without_a_length_reach_the_client_whole(proxy, framing):
    with httpx.Client(base_url=proxy.url) as client:
        for _ in range(2):  # the client connection stays usable afterwards
            r = client.get(f"/api/v1/products/{framing}")
            assert r.json()["path"] == f"/api/v1/products/{framing}"
            assert r.headers["transfer-encoding"] == "chunked"
    http10 = raw_request(proxy, f"GET /x/{framing} HTTP/1.0\r\n\r\n".encode())
    assert http10.startswith(b"HTTP/1.1 200 ") and http10.endswith(b"}")


def test_smuggling_shapes_are_refused_and_absolute_targets_made_relative(proxy):
    for request in (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ):
        assert raw_request(proxy, request).startswith(b"HTTP/1.1 400 ")
    tunnel = raw_request(proxy, b"CONNECT catalog:80 HTTP/1.1\r\nHost: catalog:80\r\n\r\n")
    assert tunnel.startswith(b"HTTP/1.1 501 ")
    absolute = raw_request(
        proxy,
        b"GET http://evil.example/api/v1/products/7 HTTP/1.1\r\nHost: shop\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert b'"path": "/api/v1/products/7"' in absolute
    no_path = raw_request(
        proxy, b"GET http://evil.example?page=2 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    )
    assert b'"path": "/?page=2"' in no_path, no_path  # the query is kept
    upgrade = raw_request(
        proxy, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert upgrade.startswith(b"HTTP/1.1 200 ") and b'"upgrade"' not in upgrade


@pytest.mark.parametrize("target", [b"/api/v1/products#x", b"/legacy#/../api/v1/products"])
def test_a_target_with_a_fragment_is_refused(proxy, target):
    """A fragment is no part of a request target (RFC 9112 3.2): the proxy routed
    `/api/v1/products#x` by all of it (no route: the monolith) while gunicorn served it as
    `/api/v1/products`, so a retired route's monolith endpoint could still be reached."""
    answer = raw_request(proxy, b"GET " + target + b" HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"fragment" in answer, answer


def test_malformed_and_oversized_requests_get_the_right_4xx(proxy):
    assert raw_request(proxy, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
    assert raw_request(proxy, huge).startswith(b"HTTP/1.1 431 ")
    big_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n"
    answer = raw_request(proxy, big_body)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"50000 bytes" in answer
    chunked = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"ea60\r\n"
        + b"z" * 60000
        + b"\r\n0\r\n\r\n"
    )
    assert raw_request(proxy, chunked).startswith(b"HTTP/1.1 413 ")
    assert httpx.get(f"{proxy.url}/still-up").status_code == 200


def test_a_dead_backend_gets_a_clean_502_naming_it(proxy):
    r = httpx.get(f"{proxy.url}/legacy/page")
    assert r.status_code == 502
    body = r.json()
    assert body["backend"] == "down" and body["reason"] == "connect_failed"
    assert "cannot connect to backend down" in body["error"]
    assert body["request_id"] == r.headers["x-request-id"]


def test_the_proxys_own_answer_to_a_head_has_no_body_and_the_connection_goes_on(proxy):
    """A 502 (or 503 once the backend's breaker is open) for HEAD announces its body's length
    and sends none (RFC 9110 9.3.2): with the body sent, a keep-alive client read it as the
    start of its next answer."""
    answer = raw_request(
        proxy,
        b"HEAD /legacy/page HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /legacy/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head, rest = answer.split(b"\r\n\r\n", 1)
    assert head[:12] in (b"HTTP/1.1 502", b"HTTP/1.1 503") and b"Content-Length: " in head
    assert rest[:12] in (b"HTTP/1.1 502", b"HTTP/1.1 503")  # the next answer, not a body
    _, body = rest.split(b"\r\n\r\n", 1)
    assert json.loads(body)["backend"] == "down"


def test_a_slow_backend_gets_a_504_naming_it(proxy):
    r = httpx.get(f"{proxy.url}/slow/2", timeout=10)
    assert r.status_code == 504
    assert r.json()["reason"] == "timeout" and "within 1.0 s" in r.json()["error"]


def test_service_5xx_on_a_get_falls_back_to_the_monolith(proxy):
    forced = {"X-Strangler-Force": f"service:{SECRET}"}
    # the override targets the service; a 500 from it is retried on the monolith for a GET
    r = httpx.get(f"{proxy.url}/api/v1/products/status/500", headers=forced)
    assert r.status_code == 500 and r.headers["x-strangler-backend"] == "monolith"
    posted = httpx.post(f"{proxy.url}/api/v1/products/status/500", headers=forced)
    assert posted.status_code == 500 and posted.headers["x-strangler-backend"] == "catalog"


def test_metrics_and_access_log_describe_each_request(proxy):
    httpx.get(f"{proxy.url}/api/v1/products/9", headers={"X-Request-ID": "log-me"})
    text = proxy.metrics()
    assert (
        'strangler_proxy_requests_total{route="products",backend="monolith",status="200"}' in text
    )
    assert 'strangler_proxy_overhead_seconds_bucket{route="products"' in text
    assert "strangler_proxy_config_version 1" in text
    assert 'strangler_proxy_breaker_state{backend="catalog"}' in text
    assert 'strangler_route_weight{route="products"} 0' in text
    assert 'strangler_route_state{route="products",state="monolith"} 1' in text
    assert 'strangler_route_state{route="products",state="canary"} 0' in text
    assert "process_cpu_seconds_total" in text and "process_open_fds" in text
    assert "strangler_proxy_route_store_healthy 1" in text
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in proxy.log_path.read_text().splitlines()]
        mine = [line for line in lines if line["request_id"] == "log-me"]
        if mine:
            break
        time.sleep(0.1)
    (entry,) = mine
    assert (entry["route"], entry["backend"], entry["status"]) == ("products", "monolith", 200)
    assert entry["duration_ms"] > 0


def test_shutdown_finishes_in_flight_requests(upstreams, tmp_path):
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 0))
    process = ProxyProcess("--config", str(config))
    answers: list[int] = []
    client = threading.Thread(
        target=lambda: answers.append(httpx.get(f"{process.url}/slow/1", timeout=10).status_code)
    )
    client.start()
    deadline = time.monotonic() + 10
    while "strangler_proxy_in_flight_requests 1" not in process.metrics():
        assert time.monotonic() < deadline, "the slow request never reached the proxy"
        time.sleep(0.05)
    assert process.stop() == 0
    client.join()
    assert answers == [200]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{process.url}/")


def test_two_workers_share_the_port_and_stop_cleanly(upstreams, tmp_path):
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 50))
    process = ProxyProcess("--config", str(config), extra=("--workers", "2"))
    try:
        seen = backends_for(process.url, [f"user-{i}" for i in range(400)], threads=8)
        assert set(seen.values()) == {"monolith", "catalog"}
        # /metrics (served by worker 0) adds up both workers, the other's within ~1 s
        deadline = time.monotonic() + 5
        while (counted := requests_counted(process.metrics())) < 400:
            assert time.monotonic() < deadline, f"metrics count {counted} of 400 requests"
            time.sleep(0.2)
        assert counted == 400
    finally:
        assert process.stop() == 0


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid`, as /proc says (clock ticks of 1/100 s)."""
    return sum(int(f) for f in _stat_fields(pid)[11:15]) / os.sysconf("SC_CLK_TCK")


def _process_cpu(proxy: ProxyProcess) -> float:
    line = next(ln for ln in proxy.metrics().splitlines() if ln.startswith("process_cpu_seconds"))
    return float(line.rsplit(" ", 1)[1])


def test_process_metrics_cover_every_worker_and_never_go_down(upstreams, tmp_path):
    """--workers 2: process_* described worker 0 alone, so the other worker's CPU was missing
    from process_cpu_seconds_total; and a worker killed and started again must not take its
    seconds out of the sum (Prometheus would read a reset)."""
    process = proxy_for(upstreams, tmp_path, "--workers", "2")
    try:
        backends_for(process.url, [f"user-{i}" for i in range(3000)], threads=16)
        workers = children_of(process.proc.pid)
        used = [_cpu_seconds(pid) for pid in workers]
        assert len(used) == 2 and min(used) > 0, used  # both served (16 connections)
        before = _process_cpu(process)
        assert before >= sum(used), (before, used)
        os.kill(workers[1], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while len(set(children_of(process.proc.pid)) - {workers[1]}) < 2:
            assert time.monotonic() < deadline, "the killed worker was not started again"
            time.sleep(0.1)
        assert _process_cpu(process) >= before
    finally:
        process.stop()


def _metric(proxy: ProxyProcess, name: str) -> float:
    line = next(ln for ln in proxy.metrics().splitlines() if ln.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


def test_resident_memory_counts_the_pages_workers_share_once(upstreams, tmp_path):
    """process_resident_memory_bytes summed each process's RSS: the interpreter and library
    pages a forked worker shares with its supervisor were counted once per process, so the
    figure grew with --workers faster than the memory used did."""
    process = proxy_for(upstreams, tmp_path, "--workers", "2")
    try:
        backends_for(process.url, [f"user-{i}" for i in range(200)], threads=4)
        pids = tree(process.proc.pid)  # the supervisor, its workers and their mirrors
        assert len(pids) >= 3, pids
        rss = sum(int(_stat_fields(pid)[21]) * os.sysconf("SC_PAGE_SIZE") for pid in pids)
        shown = _metric(process, "process_resident_memory_bytes")
        assert 0 < shown < 0.9 * rss, (shown, rss)
    finally:
        process.stop()


def requests_counted(metrics: str) -> int:
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("strangler_proxy_requests_total{")
    )


def access_log(proxy: ProxyProcess, settle: float = 3.0) -> list[dict]:
    """The access log's lines once the proxy's 0.5 s flush has run (bounded wait)."""
    path = proxy.log_path  # type: ignore[attr-defined]
    before = -1
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines()
        if len(lines) == before:
            break
        before = len(lines)
        time.sleep(0.6)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_answer_the_proxy_gives_itself_is_in_the_access_log(proxy):
    refusals = {
        400: b"GET /nohost HTTP/1.1\r\nConnection: close\r\n\r\n",
        431: b"GET /big HTTP/1.1\r\nHost: s\r\nX-Big: " + b"x" * 5000 + b"\r\n\r\n",
        413: b"POST /huge HTTP/1.1\r\nHost: s\r\nContent-Length: 60000\r\n\r\n",
        501: b"POST /coded HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    }
    for status, request in refusals.items():
        assert raw_request(proxy, request).startswith(b"HTTP/1.1 %d " % status)
    refused = [line for line in access_log(proxy) if line["route"] == "(refused)"]
    for status in refusals:
        assert any(line["status"] == status for line in refused), (status, refused)
    assert {line["path"] for line in refused} >= {"/nohost", "/huge", "/coded"}
    counted = sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in proxy.metrics().splitlines()
        if line.startswith("strangler_proxy_rejected_requests_total{")
    )
    assert len(refused) == counted, "one access-log line for every refusal counted"


def test_grace_running_out_exits_1_and_says_how_many_were_cut(upstreams, tmp_path):
    process = proxy_for(upstreams, tmp_path, "--grace", "0.5")
    outcome: list[str] = []

    def slow_request() -> None:
        try:
            httpx.get(f"{process.url}/slow/5", timeout=10)
            outcome.append("answered")
        except httpx.HTTPError:
            outcome.append("cut")

    client = threading.Thread(target=slow_request)
    client.start()
    wait_in_flight(process, 1)
    assert process.stop() == 1
    client.join()
    assert outcome == ["cut"]
    assert "1 requests in flight were cut" in process.stderr


def test_a_killed_worker_is_restarted_logged_and_counted(upstreams, tmp_path):
    process = proxy_for(upstreams, tmp_path, "--workers", "2")
    try:
        assert process.ready["pid"] == process.proc.pid, "the pid printed is the supervisor's"
        workers = sorted(children_of(process.proc.pid))
        assert len(workers) == 2
        os.kill(workers[-1], signal.SIGKILL)  # the later fork: not worker 0, which has the admin
        deadline = time.monotonic() + 15
        while "strangler_proxy_worker_restarts_total 1" not in process.metrics():
            assert time.monotonic() < deadline, "the dead worker was not restarted"
            time.sleep(0.1)
        assert '"event": "worker_restarted"' in process.stderr_so_far()
        assert len(children_of(process.proc.pid)) == 2
        seen = backends_for(process.url, [f"user-{i}" for i in range(100)], threads=4)
        assert set(seen.values()) == {"monolith"}
    finally:
        assert process.stop() == 0


def test_workers_do_not_outlive_a_killed_supervisor(upstreams, tmp_path):
    process = proxy_for(upstreams, tmp_path, "--workers", "2")
    workers = children_of(process.proc.pid)
    try:
        assert len(workers) == 2
        process.proc.kill()  # kill -9: no chance to stop its workers itself
        process.proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(running(pid) for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers still running"
            time.sleep(0.1)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{process.url}/")
    finally:
        process.stop()
        for pid in workers:  # should the test fail, leave no orphan behind
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("pooled", [True, False])
def test_a_client_that_leaves_before_the_answer_is_counted_and_logged_as_499(proxy, pooled):
    """It was in neither requests_total nor the access log: a client timing out on a slow
    backend (the very traffic an error-rate gate should see) vanished from both."""
    request_id = f"gone-{'pooled' if pooled else 'new'}"
    if pooled:  # an idle connection to the monolith: the request goes out at once on it
        assert httpx.get(f"{proxy.url}/warm", timeout=10).status_code == 200
    before = proxy.metrics()
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /slow/0.8 HTTP/1.1\r\nHost: shop\r\nX-Request-ID: %s\r\n\r\n"
                     % request_id.encode())  # fmt: skip
        time.sleep(0.2)
    lines = [line for line in access_log(proxy) if line["request_id"] == request_id]
    assert [(line["status"], line["backend"]) for line in lines] == [(499, "monolith")], lines
    assert requests_counted(proxy.metrics()) == requests_counted(before) + 1
    assert 'status="499"' in proxy.metrics()


def test_a_client_that_left_is_not_served_by_a_fallback(proxy):
    """Its service request ended as `client_gone`, which the fallback took for a service
    failure: the monolith was sent the request too, for nobody, and a fallback counted."""
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/products/slow/0.8 HTTP/1.1\r\nHost: shop\r\n"
                     b"X-Request-ID: gone-service\r\nX-Strangler-Force: service:%s\r\n\r\n"
                     % SECRET.encode())  # fmt: skip
        time.sleep(0.2)
    lines = [line for line in access_log(proxy) if line["request_id"] == "gone-service"]
    assert [(line["status"], line["backend"]) for line in lines] == [(499, "catalog")], lines
    assert 'reason="client_gone"' not in proxy.metrics()
