"""A service that breaks mid-response must be seen as failing: by the gates and the breaker.

The backend is a raw-socket server sending a head and the start of a body, then an invalid
chunk line or a close short of its Content-Length: no real framework answers like that on
purpose, which is the point.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.runbook.metrics import parse, traffic
from tests.proxy.helpers import ProxyProcess, write_json
from tests.proxy.test_hostile_peers import (
    connect,
    read_head,
    read_until_closed,
    responses,
)

BREAK_AFTER_S = 0.5  # the first part of the body is surely forwarded (committed) by then
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BROKEN = {
    "badchunk": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"ZZZ\r\n",
    ),
    "short": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", b""),
}
CASES = [(kind, path) for kind in ("connecting", "pooled") for path in BROKEN]
# Head and invalid chunk in one write: broken before anything could go to the client.
AT_ONCE = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\n"


def _serve(conn: socket.socket) -> None:
    """Answer `/ok` and keep the connection; answer the others broken, then close."""
    buffer = b""
    with conn:
        while (read := read_head(conn, buffer)) is not None:
            head, buffer = read
            name = head.split(b" ", 2)[1].decode().rsplit("/", 1)[-1]
            if name == "at-once":
                conn.sendall(AT_ONCE)
                return
            if name not in BROKEN:
                conn.sendall(OK)
                continue
            first, rest = BROKEN[name]
            conn.sendall(first)
            time.sleep(BREAK_AFTER_S)
            conn.sendall(rest)
            return


def _accept(server: socket.socket) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[ProxyProcess]:
    server = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    threading.Thread(target=_accept, args=(server,), daemon=True).start()
    steady = socket.create_server(("127.0.0.1", 0))  # answers everything `ok`
    threading.Thread(target=_accept_steady, args=(steady,), daemon=True).start()
    work = tmp_path_factory.mktemp("broken")
    names = [f"c{i}" for i in range(len(CASES))] + ["trip"]
    raw = {
        "default_backend": "monolith",
        "backends": {
            "monolith": {"url": url},
            **{f"svc_{n}": {"url": url, "breaker_failures": 3} for n in names},
        },
        "routes": [
            {
                "id": n,
                "prefix": f"/{n}",
                "monolith": "monolith",
                "service": f"svc_{n}",
                "weight": 100,
            }
            for n in names
        ]
        + [
            {"id": "fallback", "prefix": "/fallback", "monolith": "steady",
             "service": "svc_fallback", "weight": 100},
        ],
    }  # fmt: skip
    raw["backends"]["steady"] = {"url": f"http://127.0.0.1:{steady.getsockname()[1]}"}
    raw["backends"]["svc_fallback"] = {"url": url}
    log_path = work / "access.log"
    process = ProxyProcess(
        "--config", str(write_json(work / "routes.json", raw)), log_path=log_path
    )
    process.log_path = log_path  # type: ignore[attr-defined]
    yield process
    process.stop()
    server.close()
    steady.close()


def _accept_steady(server: socket.socket) -> None:
    def serve(conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while (read := read_head(conn, buffer)) is not None:
                buffer = read[1]
                conn.sendall(OK)

    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _log_line(path: Path, request_id: str) -> dict:
    """The access log line of one request, once the proxy's periodic flush wrote it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["request_id"] == request_id:
                return record
        time.sleep(0.1)
    raise AssertionError(f"no access log line for {request_id}")


def _value(metrics: str, series: str) -> float:
    line = next((ln for ln in metrics.splitlines() if ln.startswith(series + " ")), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def _get(sock: socket.socket, path: str, request_id: str, close: bool) -> None:
    extra = b"Connection: close\r\n" if close else b""
    sock.sendall(
        b"GET %s HTTP/1.1\r\nHost: shop\r\nX-Request-ID: %s\r\n%s\r\n"
        % (path.encode(), request_id.encode(), extra)
    )


@pytest.mark.parametrize(("index", "kind", "path"), [(i, *c) for i, c in enumerate(CASES)])
def test_a_response_cut_mid_body_counts_as_the_services_failure(proxy, index, kind, path):
    route, backend = f"c{index}", f"svc_c{index}"
    with connect(proxy) as sock:
        if kind == "pooled":  # leaves an idle upstream connection: the next request reuses it
            _get(sock, f"/{route}/ok", f"warm-{route}", close=False)
            received = b""
            while not responses(received):
                received += sock.recv(65536)
        _get(sock, f"/{route}/{path}", f"cut-{route}", close=True)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer  # the head went out before the break
    assert responses(answer) == [], "the client must see the answer cut, not complete"

    record = _log_line(proxy.log_path, f"cut-{route}")
    assert (record["status"], record.get("error")) == (200, "broken_response"), record
    text = proxy.metrics()
    pair = f'route="{route}",backend="{backend}"'
    assert _value(text, f'strangler_proxy_requests_total{{{pair},status="502"}}') == 1
    assert _value(text, f'strangler_proxy_requests_total{{{pair},status="200"}}') == (
        1 if kind == "pooled" else 0
    )
    errors = (
        f'strangler_proxy_upstream_errors_total{{backend="{backend}",reason="broken_response"}}'
    )
    assert _value(text, errors) == 1
    seen = traffic(parse(text), route, backend)  # what a runbook's error-rate gate reads
    assert seen.errors == 1


def test_responses_cut_mid_body_open_the_services_breaker(proxy):
    for attempt in range(3):  # breaker_failures is 3
        with connect(proxy) as sock:
            _get(sock, "/trip/badchunk", f"trip-{attempt}", close=True)
            assert responses(read_until_closed(sock)) == []
    text = proxy.metrics()
    assert 'strangler_proxy_breaker_state{backend="svc_trip"} 2' in text, text
    with connect(proxy) as sock:  # and the route's requests are the monolith's again
        _get(sock, "/trip/ok", "after-trip", close=True)
        ((status, headers, _),) = responses(read_until_closed(sock))
    assert status == 200 and headers[b"x-strangler-backend"] == b"monolith", headers


def test_a_service_answer_broken_before_any_byte_left_falls_back_to_the_monolith(proxy):
    """A GET's service answer whose head and invalid chunk came in one read had sent the
    client nothing, yet it got a 502 where the monolith could answer (as it does for an
    invalid head): the fallback exists for exactly this canary traffic."""
    with connect(proxy) as sock:
        _get(sock, "/fallback/at-once", "fallback-1", close=True)
        answer = read_until_closed(sock)
    assert [(status, body) for status, _, body in responses(answer)] == [(200, b"ok")], answer
    assert b"x-strangler-backend: steady" in answer.lower()
    record = _log_line(proxy.log_path, "fallback-1")
    assert record.get("fallback") == "bad_response", record


def test_a_pooled_service_answer_broken_before_any_byte_left_falls_back_too(proxy):
    """The same on a pooled connection (the fast path): the head was committed as it was
    parsed, so the invalid chunk in the same read cut a response nothing of which had left,
    and the client got no byte at all, its connection closed."""
    with connect(proxy) as sock:
        _get(sock, "/fallback/ok", "pooled-1", close=False)  # leaves an idle connection
        received = b""
        while not responses(received):
            received += sock.recv(65536)
        _get(sock, "/fallback/at-once", "pooled-2", close=True)
        answer = read_until_closed(sock)
    assert [(status, body) for status, _, body in responses(answer)] == [(200, b"ok")], answer
    assert b"x-strangler-backend: steady" in answer.lower()
    assert _log_line(proxy.log_path, "pooled-1")["backend"] == "svc_fallback"
    record = _log_line(proxy.log_path, "pooled-2")
    assert record.get("fallback") == "bad_response", record
