"""Clients and backends that bend HTTP/1.1: the proxy must not be the one that breaks.

The backend here is a scripted raw-socket server, because the behaviours under test
(announcing `Connection: close` on a HEAD answer but closing late, echoing exactly the
header lines it received) are what a well-behaved test server would never do.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.proxy.helpers import ProxyProcess, raw_request, write_json

LATE_CLOSE_SECONDS = 1.0


class ScriptedBackend:
    """One thread per connection; answers by path, echoing the request's header lines."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ")
                headers = [line.split(":", 1)[0].lower() for line in lines[1:]]
                buffer = self._skip_body(conn, lines[1:], buffer)
                if path == "/head-close":
                    # Says close, but closes only later: the proxy must not reuse this one.
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                    )
                    time.sleep(LATE_CLOSE_SECONDS)
                    return
                body = json.dumps({"method": method, "path": path, "headers": headers}).encode()
                answer = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                if path == "/drip":  # the body's second half comes a moment later
                    half = len(answer) - 10
                    conn.sendall(answer[:half])
                    time.sleep(0.3)
                    conn.sendall(answer[half:])
                    continue
                if path == "/then-408":
                    # An unasked-for answer on an idle keep-alive connection, as servers
                    # send before closing one; the connection must not serve another request.
                    conn.sendall(
                        answer + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
                    )
                    time.sleep(LATE_CLOSE_SECONDS)
                    return
                conn.sendall(answer)

    @staticmethod
    def _skip_body(conn: socket.socket, lines: list[str], buffer: bytes) -> bytes:
        """Consume the request body (length or chunked, trailers included)."""
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
        if "content-length" in fields:
            need = int(fields["content-length"])
            while len(buffer) < need:
                buffer += conn.recv(65536)
            return buffer[need:]
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while not (buffer.startswith(b"0\r\n\r\n") or b"\r\n0\r\n\r\n" in buffer):
                buffer += conn.recv(65536)
            return buffer.split(b"0\r\n\r\n", 1)[1]
        return buffer

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[ProxyProcess]:
    backend = ScriptedBackend()
    work = tmp_path_factory.mktemp("hostile")
    raw = {
        "default_backend": "monolith",
        "backends": {
            "monolith": {"url": backend.url, "timeout": 5.0},
            "fresh": {"url": backend.url},  # its own pool, so its first request connects
        },
        "routes": [
            {"id": "fresh", "prefix": "/fresh", "monolith": "fresh", "service": "monolith"},
            {
                "id": "tenant",
                "prefix": "/",
                "host": "admin.example",
                "monolith": "fresh",
                "service": "monolith",
                "weight": 100,
            },
        ],
    }
    process = ProxyProcess("--config", str(write_json(work / "routes.json", raw)))
    yield process
    process.stop()
    backend.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", "/head-close"),  # a HEAD answer saying Connection: close
        ("GET", "/then-408"),  # an unasked-for 408 on the idle connection
    ],
)
def test_a_post_never_goes_on_a_connection_the_backend_is_closing(proxy, method, path):
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        assert client.request(method, path).status_code == 200
        # A POST is never retried; sent on the connection the backend is closing, it fails.
        r = client.post("/orders", content=b"pay once")
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "POST"


def test_request_trailers_never_become_request_headers_upstream(proxy):
    answer = raw_request(
        proxy,
        b"POST /fresh/upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Smuggled: yes\r\nHost: evil\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    seen = json.loads(answer.split(b"\r\n\r\n", 1)[1])["headers"]
    assert "x-smuggled" not in seen and seen.count("host") == 1


@pytest.mark.parametrize(
    ("request_bytes", "status", "says"),
    [
        # The route would read one Host, the backend possibly the other.
        (b"GET /secret HTTP/1.1\r\nHost: www.example\r\nHost: admin.example\r\n", 400, b"Host"),
        # Dropping the hop-by-hop header would pass gzip-coded bytes on as plain ones.
        (
            b"POST /fresh/upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip, chunked\r\n",
            501,
            b"gzip",
        ),
    ],
    ids=["two-hosts", "gzip-transfer-coding"],
)
def test_requests_the_proxy_would_pass_on_ambiguously_are_refused(
    proxy, request_bytes, status, says
):
    answer = raw_request(proxy, request_bytes + b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 %d " % status) and says in answer, answer


def test_a_pipelined_upload_expecting_100_continue_does_not_split_the_previous_response(proxy):
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /drip HTTP/1.1\r\nHost: shop\r\n\r\n")
        received = sock.recv(65536)  # the first response's head and half its body
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"
        )
        while chunk := sock.recv(65536):
            received += chunk
    first, rest = received.split(b"\r\n\r\n", 1)
    length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body, after = rest[:length], rest[length:]
    assert json.loads(body)["path"] == "/drip"
    # The whole body arrived already, so no interim answer is owed; any sent comes after.
    after = after.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert after.startswith(b"HTTP/1.1 200 ") and b'"path": "/upload"' in after, after


def test_an_http10_keep_alive_client_is_told_the_connection_stays_open(proxy):
    """HTTP/1.0 connections close after each answer unless the answer says keep-alive."""
    host, port = proxy.url.removeprefix("http://").split(":")
    request = b"GET /one HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            head, body = received.split(b"\r\n\r\n", 1)
            assert b"\r\nconnection: keep-alive" in head.lower(), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += sock.recv(65536)
            assert json.loads(body)["path"] == "/one"


def test_a_bad_request_pipelined_behind_a_good_one_does_not_take_its_answer(proxy):
    """The good request was sent upstream; its real answer comes first, then the 400."""
    answer = raw_request(proxy, b"GET /drip HTTP/1.1\r\nHost: shop\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    first, rest = answer.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 "), answer
    length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert json.loads(rest[:length])["path"] == "/drip"
    assert rest[length:].startswith(b"HTTP/1.1 400 "), answer
