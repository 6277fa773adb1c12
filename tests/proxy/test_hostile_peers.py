"""Clients and backends that bend HTTP/1.1: the proxy must not be the one that breaks.

The backend here is a scripted raw-socket server, because the behaviours under test
(announcing `Connection: close` on a HEAD answer but closing late, echoing exactly the
header lines it received) are what a well-behaved test server would never do.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import httptools
import httpx
import pytest

from tests.proxy.helpers import ProxyProcess, raw_request, write_json

LATE_CLOSE_SECONDS = 1.0
STALL_SECONDS = 20  # how long the scripted backend waits on a stalled answer at most
CANNED = {
    # Answers at once, before the request body has arrived (then reads and drops it).
    "early": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly",
    # Writes past its Content-Length in one go: a second response head with a header of its own.
    "overflow": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    b"HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 3\r\n\r\nbad",
    # An invalid chunk size, then closes.
    "badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
    # Transfer codings the proxy would drop with the hop-by-hop header, passing coded bytes.
    "gzipped": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    "identity": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
    b"\r\nhello",
    # A status code below 100: neither an interim answer nor a final one.
    "status099": b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok",
    # Chunks with trailer fields: not header fields (RFC 9110 6.5.1).
    "trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    b"0\r\nX-Trailer: t\r\nSet-Cookie: session=forged\r\n\r\n",
    # A 204 announcing a body, which it cannot have (RFC 9110 8.6: no Content-Length on one).
    "nocontent": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    # A body after the head of a HEAD answer, in the same write.
    "headbody": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
}


def read_head(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
    """The next request head received on `conn` and the bytes after it; None once closed."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


class ScriptedBackend:
    """One thread per connection; answers by path, echoing the request's header lines."""

    def __init__(self) -> None:
        self.endless_head_sent = 0  # bytes of /endless-head written before the proxy let go
        self.held: dict[str, float] = {}  # path -> s until the proxy closed a stalled answer
        self.sent: dict[str, int] = {}  # path -> bytes of a /large answer sent, once done
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
        timing_out = False  # the next request on this connection meets an idle timeout
        with conn:
            while True:
                read = read_head(conn, buffer)
                if read is None:
                    return
                head, buffer = read
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ")
                if timing_out:  # its 408 was on the wire as this request arrived
                    conn.sendall(
                        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                        b"Content-Length: 0\r\n\r\n"
                    )
                    return
                timing_out = path.endswith("/times-out-next")
                headers = [line.split(":", 1)[0].lower() for line in lines[1:]]
                if path.endswith("/endless-head"):  # a header line that never ends (bounded)
                    self._send_endless_head(conn)
                    return
                if "/stall" in path:  # a head and some of the body, then nothing
                    self._stall(conn, path)
                    return
                if "/large" in path:
                    self._send_large(conn, path)
                    continue
                if path.endswith("/unread"):  # answers a moment later, never reading the body
                    time.sleep(LATE_CLOSE_SECONDS / 2)
                    conn.sendall(CANNED["early"])
                    time.sleep(LATE_CLOSE_SECONDS)
                    return
                canned = CANNED.get(path.split("?")[0].rsplit("/", 1)[-1])
                if canned is not None:  # answered before (or without) reading the body
                    conn.sendall(canned)
                if path.endswith("/badchunk"):
                    return
                skipped = self._skip_body(conn, lines[1:], buffer)
                if skipped is None:
                    return  # the proxy gave up on this request
                buffer = skipped
                if canned is not None:
                    continue
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
                if path.endswith("/late"):  # answers a moment after the request came
                    time.sleep(LATE_CLOSE_SECONDS)
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

    def _send_endless_head(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        chunk = b"a" * 65536
        for _ in range(512):  # 32 MiB at most
            try:
                conn.sendall(chunk)
            except OSError:
                return
            self.endless_head_sent += len(chunk)

    def _stall(self, conn: socket.socket, path: str) -> None:
        started = time.monotonic()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        conn.settimeout(STALL_SECONDS)
        with contextlib.suppress(OSError):
            conn.recv(1)  # returns when the proxy closes the connection
        self.held[path] = time.monotonic() - started

    def _send_large(self, conn: socket.socket, path: str) -> None:
        """`/large/N`: N MiB of body."""
        size = int(path.rsplit("/", 1)[1]) << 20
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        sent, chunk = 0, b"x" * 65536
        conn.settimeout(STALL_SECONDS)
        with contextlib.suppress(OSError):
            while sent < size:
                conn.sendall(chunk)
                sent += len(chunk)
        self.sent[path] = sent

    @staticmethod
    def _skip_body(conn: socket.socket, lines: list[str], buffer: bytes) -> bytes | None:
        """Consume the request body (length or chunked, trailers included); None if cut."""
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
        if "content-length" in fields:
            need = int(fields["content-length"])
            while len(buffer) < need:
                data = conn.recv(65536)
                if not data:
                    return None
                buffer += data
            return buffer[need:]
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while not (buffer.startswith(b"0\r\n\r\n") or b"\r\n0\r\n\r\n" in buffer):
                data = conn.recv(65536)
                if not data:
                    return None
                buffer += data
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
        "settings": {"client_header_timeout": 1.0, "client_body_timeout": 1.0},
        "backends": {
            "monolith": {"url": backend.url, "timeout": 5.0, "breaker_failures": 3},
            # Pools of their own, so a test's first request there connects (the slow path).
            "fresh": {"url": backend.url},
            "fresh2": {"url": backend.url},
            "fresh3": {"url": backend.url},
            "fresh4": {"url": backend.url},
            "quick": {"url": backend.url, "timeout": 1.0},
            "stale": {"url": backend.url},  # the failures its test provokes count here
        },
        "routes": [
            {"id": "fresh", "prefix": "/fresh", "monolith": "fresh", "service": "monolith"},
            {"id": "b2", "prefix": "/b2", "monolith": "fresh2", "service": "monolith"},
            {"id": "b3", "prefix": "/b3", "monolith": "fresh3", "service": "monolith"},
            {"id": "b4", "prefix": "/b4", "monolith": "fresh4", "service": "monolith"},
            {"id": "quick", "prefix": "/quick", "monolith": "quick", "service": "monolith"},
            {"id": "stale", "prefix": "/stale", "monolith": "stale", "service": "monolith"},
            {
                "id": "t2",
                "prefix": "/",
                "host": "tenant.example",
                "monolith": "fresh",
                "service": "monolith",
            },
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
    process.backend = backend  # type: ignore[attr-defined]
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


def test_a_408_racing_a_request_on_a_reused_connection_is_no_answer_to_it(proxy):
    # The backend timed its idle connection out (Node's headersTimeout sends a 408, then
    # closes) just as the proxy sent the next request on it: the client got that 408,
    # an answer to nothing it sent. A request without a body is sent again elsewhere.
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        assert client.get("/stale/times-out-next").status_code == 200
        r = client.get("/stale/orders")
        assert r.status_code == 200, r.text
        assert (r.json()["method"], r.json()["path"]) == ("GET", "/stale/orders")
        assert client.get("/stale/times-out-next").status_code == 200
        # Not idempotent, so not sent again: the backend closed without answering it.
        refused = client.post("/stale/orders/1/cancel")
        assert refused.status_code == 502, refused.text
        assert "closed the connection without answering" in refused.text
        assert client.get("/stale/times-out-next").status_code == 200
        # With a body, the backend's 408 may be its answer to a slow body: passed on.
        assert client.post("/stale/orders", content=b"pay once").status_code == 408


@pytest.mark.parametrize("target", [b"http://tenant.example/a", b"HTTP://user@tenant.example/a"])
def test_an_absolute_form_target_is_routed_by_its_authority_not_the_host_header(proxy, target):
    # RFC 9112 3.2.2: with an absolute-form target the Host header is ignored. The proxy
    # routed by Host (www.example, the default backend) while the target named
    # tenant.example, whose route goes to another backend.
    answer = raw_request(
        proxy, b"GET %s HTTP/1.1\r\nHost: www.example\r\nConnection: close\r\n\r\n" % target
    )
    ((status, headers, body),) = responses(answer)
    assert status == 200, answer
    assert headers[b"x-strangler-backend"] == b"fresh", answer
    assert json.loads(body)["headers"].count("host") == 1


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


def test_an_upgrade_request_with_a_body_is_refused_at_once(proxy):
    """The parser never reads the body of a request asking for an Upgrade (an h2c upgrade
    offered on a POST, say): passed on, its head promised the backend a body that never
    came, and the backend's timeout was counted against its breaker."""
    started = time.monotonic()
    answer = raw_request(
        proxy,
        b"POST /upload HTTP/1.1\r\nHost: shop\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
        b"Content-Length: 5\r\n\r\nhello",
    )
    assert answer.startswith(b"HTTP/1.1 501 ") and b"Upgrade" in answer, answer
    assert time.monotonic() - started < 2
    assert 'upstream_errors_total{backend="monolith",reason="timeout"}' not in proxy.metrics()


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


def test_an_http10_client_expecting_100_continue_gets_no_interim_answer(proxy):
    """HTTP/1.0 has no 1xx (RFC 9110 15.2): such a client takes one for the final answer."""
    with connect(proxy) as sock:
        sock.sendall(b"POST /upload HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        time.sleep(0.2)  # the head alone first, as a client waiting for the go-ahead does
        sock.sendall(b"hello")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"path": "/upload"' in answer, answer


def test_an_http10_request_with_a_transfer_coding_closes_the_connection(proxy):
    """RFC 9112 6.1: its framing is faulty (HTTP/1.0 has no chunks, so whatever sent it on
    may have framed it otherwise); it is answered, and nothing after it is read."""
    answer = raw_request(
        proxy,
        b"POST /upload HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    )
    ((status, headers, body),) = responses(answer)
    assert status == 200 and json.loads(body)["path"] == "/upload", answer
    assert headers.get(b"connection") == b"close" and b"/smuggled" not in answer, answer


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


def responses(data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The complete responses in `data` as (status, lower-case headers, body); not a cut one."""
    done: list[tuple[int, dict[bytes, bytes], bytes]] = []

    class Sink:
        headers: dict[bytes, bytes] = {}
        body = b""

        def on_message_begin(self) -> None:
            self.headers, self.body = {}, b""

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers[name.lower()] = value

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            done.append((parser.get_status_code(), self.headers, self.body))

    parser = httptools.HttpResponseParser(Sink())
    with contextlib.suppress(httptools.HttpParserError):
        parser.feed_data(data)
    return done


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (a reset counts as closing)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def connect(proxy: ProxyProcess) -> socket.socket:
    host, port = proxy.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def test_a_stalled_request_body_gets_408_and_never_opens_the_backends_breaker(proxy):
    """More stalled uploads than the breaker allows failures: users are still served."""
    stalled = [connect(proxy) for _ in range(4)]  # breaker_failures is 3
    for sock in stalled:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 100\r\n\r\nonly")
    answers = [responses(read_until_closed(sock)) for sock in stalled]
    for sock in stalled:
        sock.close()
    assert [a[0][0] for a in answers] == [408] * 4, answers
    assert b"stalled" in answers[0][0][2]
    r = httpx.get(f"{proxy.url}/after-the-stalls", timeout=10)
    assert r.status_code == 200 and r.json()["path"] == "/after-the-stalls"
    text = httpx.get(f"{proxy.admin_url}/metrics", timeout=5).text
    assert 'strangler_proxy_breaker_state{backend="monolith"} 0' in text
    assert 'upstream_errors_total{backend="monolith"' not in text, "the backend is not blamed"
    assert _value(text, 'strangler_proxy_client_timeouts_total{phase="body"}') >= 4


def test_a_header_section_sent_line_by_line_is_cut_off_with_408(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"GET /slowloris HTTP/1.1\r\nHost: shop\r\n")
        sock.settimeout(0.5)
        received = b""
        for line in range(40):  # up to ~20 s, far beyond the 1 s header timeout
            try:
                sock.sendall(b"X-Line-%d: x\r\n" % line)
                received += sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if b"\r\n\r\n" in received:
                break
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received
    assert b"header section" in received


HEAD_SO_FAR = b"POST /endless HTTP/1.1\r\nHost: shop\r\n"
TRAILERS_SO_FAR = HEAD_SO_FAR + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"


@pytest.mark.parametrize(
    "start",
    [HEAD_SO_FAR + b"X-Endless: ", HEAD_SO_FAR, TRAILERS_SO_FAR + b"X-Endless: "],
    ids=["header-value", "header-name", "trailer-value"],
)
def test_a_field_line_that_never_ends_gets_431_not_memory(proxy, start):
    """httptools keeps a field line until it is whole; the proxy used to count it only then,
    so the line grew with every read until a timeout (a trailer's, never while it grew)."""
    with connect(proxy) as sock:
        sock.sendall(start)
        for _ in range(8):  # up to 512 KiB, far beyond max_header_bytes (16 KiB)
            sock.sendall(b"a" * 65536)
            if select.select([sock], [], [], 0.2)[0]:  # answered: sending more would reset
                break
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout(proxy):
    with connect(proxy) as sock:
        assert read_until_closed(sock) == b"", "closed without an answer, as nothing was asked"


def test_an_early_answer_keeps_the_connection_usable_for_the_next_request(proxy):
    """The backend answers before the body is in; the rest of the body is dropped."""
    with connect(proxy) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: shop\r\nContent-Length: 10\r\n\r\nfirst")
        received = b""
        while not responses(received):
            received += sock.recv(65536)
        ((status, headers, body),) = responses(received)
        assert (status, body) == (200, b"early")
        sock.sendall(b"half\n" + b"GET /one HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        rest = read_until_closed(sock)
    if headers.get(b"connection", b"").lower() == b"close":
        return  # also correct: the client was told not to reuse the connection
    ((status, _, body),) = responses(rest)
    assert status == 200 and json.loads(body)["path"] == "/one", rest


def test_alternating_uploads_answered_early_and_reads_all_succeed(proxy):
    """The issue's shape: http.client alternating POST (answered early) and GET."""
    host, port = proxy.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    failures = 0
    for i in range(60):
        try:
            if i % 2:
                conn.request("GET", "/one")
            else:
                conn.request("POST", "/early", body=b"x" * 200_000)
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.close()
    assert failures == 0


def test_an_early_answer_from_a_backend_not_reading_the_body_leaves_the_client_usable(proxy):
    """Its unread body held the client's reading back; the backend gone, reading resumes."""
    host, port = proxy.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/fresh/unread", body=b"x" * 8_000_000)  # more than socket buffers
        answer = conn.getresponse()
        assert (answer.status, answer.read()) == (200, b"early")
        conn.request("GET", "/one")
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["path"] == "/one"
    finally:
        conn.close()


def test_bytes_past_a_content_length_never_reach_the_client(proxy):
    for _ in range(2):  # and the connection they came on is not reused
        with connect(proxy) as sock:
            sock.sendall(b"GET /b2/overflow HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
            answer = read_until_closed(sock)
        ((status, headers, body),) = responses(answer)
        assert (status, body) == (200, b"hello"), answer
        assert b"x-injected" not in headers and b"X-Injected" not in answer


@pytest.mark.parametrize(("method", "path"), [("GET", "/b4/overflow"), ("HEAD", "/b4/headbody")])
def test_unasked_bytes_never_answer_the_next_request_nor_another_clients(proxy, method, path):
    """Bytes after an answer, in the same read, on a pooled connection: a request pipelined
    behind it must not be sent on that connection (it would take them for its answer, and
    its own answer would go to the next user of the connection)."""
    with connect(proxy) as sock, connect(proxy) as other:
        sock.sendall(b"GET /b4/one HTTP/1.1\r\nHost: shop\r\n\r\n")  # a pooled connection
        while not responses(sock.recv(65536)):
            pass
        pipelined = b"GET /b4/late HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
        sock.sendall(
            b"%s %s HTTP/1.1\r\nHost: shop\r\n\r\n%s" % (method.encode(), path.encode(), pipelined)
        )
        read = read_head(sock, b"")
        assert read is not None and read[0].startswith(b"HTTP/1.1 200 "), read
        other.sendall(b"GET /b4/mine HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        ((status, _, body),) = responses(read_until_closed(other))
        assert status == 200 and json.loads(body)["path"] == "/b4/mine", body
        rest = read[1] + read_until_closed(sock)
    if method == "GET":
        assert rest.startswith(b"hello"), rest
        rest = rest.removeprefix(b"hello")
    ((status, headers, body),) = responses(rest)
    assert status == 200 and b"x-injected" not in headers, rest
    assert json.loads(body)["path"] == "/b4/late", rest


@pytest.mark.parametrize("path", ["/gzipped", "/b2/gzipped", "/identity", "/b2/status099"])
def test_a_response_the_proxy_cannot_pass_on_is_a_bad_response(proxy, path):
    """Transfer-Encoding is hop-by-hop: dropped, the client would take coded bytes for the
    body; a status below 100 is no answer at all (it waited for one until the timeout)."""
    answer = raw_request(
        proxy, b"GET %s HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n" % path.encode()
    )
    assert [status for status, _, _ in responses(answer)] == [502], answer


def test_a_response_head_that_never_ends_is_refused_not_buffered(proxy):
    """httptools keeps a field line until it ends: the proxy must stop reading it at its
    bound (a 502), not hold whatever the backend sends."""
    answer = raw_request(
        proxy, b"GET /b3/endless-head HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    )
    assert [status for status, _, _ in responses(answer)] == [502], answer
    assert b'"reason": "bad_response"' in answer
    # Cut near the 1 MiB bound (socket buffers hold a few MiB more), not after all 32 MiB.
    assert proxy.backend.endless_head_sent < 8 << 20, proxy.backend.endless_head_sent


def test_a_204_reaches_the_client_without_a_content_length(proxy):
    """A client that trusted the length would take the next answer's first bytes for it."""
    with connect(proxy) as sock:
        sock.sendall(b"GET /nocontent HTTP/1.1\r\nHost: shop\r\n\r\n")
        read = read_head(sock, b"")
    assert read is not None and read[0].startswith(b"HTTP/1.1 204 "), read
    assert b"content-length" not in read[0].lower(), read


def test_response_trailers_never_become_response_headers(proxy):
    with connect(proxy) as sock:  # a new backend connection first, then a pooled one
        for path in (b"/b2/trailers", b"/b2/trailers"):
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: shop\r\n\r\n" % path)
            received = b""
            while not responses(received):
                received += sock.recv(65536)
            ((status, headers, body),) = responses(received)
            assert (status, body) == (200, b"hello"), received
            assert b"x-trailer" not in headers and b"set-cookie" not in headers, received


def test_an_invalid_chunk_size_never_looks_like_a_complete_answer(proxy):
    with connect(proxy) as sock:  # nothing sent yet when it breaks: a 502
        sock.sendall(b"GET /b3/badchunk HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        answer = read_until_closed(sock)
    assert [status for status, _, _ in responses(answer)] == [502], answer
    assert b"invalid response" in answer
    with connect(proxy) as sock:  # on a pooled connection too (it used to be cut: no byte)
        sock.sendall(b"GET /b3/one HTTP/1.1\r\nHost: shop\r\n\r\n")
        received = b""
        while not responses(received):
            received += sock.recv(65536)
        sock.sendall(b"GET /b3/badchunk HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        rest = read_until_closed(sock)
    assert [status for status, _, _ in responses(rest)] == [502], rest


@pytest.mark.parametrize("host", [b"tenant.example", b"TENANT.example:80", b"tenant.example."])
def test_a_host_route_matches_every_spelling_django_reads_as_its_host(proxy, host):
    """Django takes `tenant.example.` for `tenant.example` (a fully qualified name's dot);
    the route must too, or that spelling reaches the default backend as the same tenant."""
    answer = raw_request(proxy, b"GET /t HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host)
    ((status, headers, _),) = responses(answer)
    assert status == 200 and headers.get(b"x-strangler-backend") == b"fresh", answer


def test_host_is_never_hop_by_hop_and_an_http11_request_needs_one(proxy):
    answer = raw_request(
        proxy, b"GET /one HTTP/1.1\r\nHost: shop\r\nConnection: Host, close\r\n\r\n"
    )
    ((status, _, body),) = responses(answer)
    assert status == 200 and "host" in json.loads(body)["headers"], answer
    answer = raw_request(proxy, b"GET /one HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"Host" in answer, answer
    answer = raw_request(proxy, b"GET /one HTTP/1.0\r\n\r\n")  # HTTP/1.0 has no Host rule
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def _value(metrics: str, series: str) -> float:
    line = next((ln for ln in metrics.splitlines() if ln.startswith(series + " ")), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def test_a_worker_at_its_connection_limit_answers_503_and_serves_the_rest(tmp_path):
    backend = ScriptedBackend()
    raw = {
        "default_backend": "monolith",
        "settings": {"max_connections": 3},
        "backends": {"monolith": {"url": backend.url}},
        "routes": [],
    }
    process = ProxyProcess("--config", str(write_json(tmp_path / "routes.json", raw)))
    try:
        held = [connect(process) for _ in range(3)]
        for sock in held:  # each answered, so each is open in the proxy now
            sock.sendall(b"GET /one HTTP/1.1\r\nHost: shop\r\n\r\n")
            received = b""
            while not responses(received):
                received += sock.recv(65536)
        with connect(process) as extra:
            extra.sendall(b"GET /one HTTP/1.1\r\nHost: shop\r\n\r\n")
            answer = read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"limit of 3 connections" in answer
        held.pop().close()
        for _ in range(50):  # the freed slot is seen once the proxy reads the close
            answer = raw_request(
                process, b"GET /two HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
            )
            if not answer.startswith(b"HTTP/1.1 503 "):
                break
            time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert _value(process.metrics(), "strangler_proxy_refused_connections_total") >= 1
        for sock in held:
            sock.close()
    finally:
        process.stop()
        backend.close()


def _metric(proxy: ProxyProcess, series: str) -> float:
    line = next((ln for ln in proxy.metrics().splitlines() if ln.startswith(series + " ")), "")
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


TIMED_OUT = 'strangler_proxy_upstream_errors_total{backend="quick",reason="timeout"}'
CLIENT_STALLED = 'strangler_proxy_client_timeouts_total{phase="response"}'


def test_a_backend_that_stalls_mid_body_is_cut_after_its_timeout(proxy):
    """A head and 10 of 100 bytes, then nothing: the client connection (and the backend's)
    were held until the backend closed, however long that took."""
    before = _metric(proxy, TIMED_OUT)
    with connect(proxy) as sock:
        sock.sendall(b"GET /quick/stall HTTP/1.1\r\nHost: shop\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and responses(answer) == [], answer
    for _ in range(100):
        if "/quick/stall" in proxy.backend.held:
            break
        time.sleep(0.1)
    # The proxy let go (within twice the backend's 1 s timeout), not the backend.
    assert proxy.backend.held["/quick/stall"] < STALL_SECONDS / 2, proxy.backend.held
    assert _metric(proxy, TIMED_OUT) == before + 1


def _slow_reader(proxy: ProxyProcess) -> socket.socket:
    """A client connection whose receive buffer is small, so the proxy is the one holding the
    answer back while the client takes its time."""
    host, port = proxy.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(15)
    sock.connect((host, int(port)))
    return sock


def test_a_client_that_reads_slowly_but_steadily_gets_the_whole_answer(proxy):
    """4 MiB taken in 128 KiB sips for about 3 s: longer than the backend's 1 s timeout and the
    client's, with the backend held back by the proxy most of that time, and never cut."""
    with _slow_reader(proxy) as sock:
        sock.sendall(b"GET /quick/large/4 HTTP/1.1\r\nHost: shop\r\n\r\n")
        received = b""
        while not responses(received) and (chunk := sock.recv(131072)):
            received += chunk
            time.sleep(0.1 * len(chunk) / 131072)
    ((status, _, body),) = responses(received)
    assert status == 200 and len(body) == 4 << 20


def test_a_client_that_stops_reading_the_answer_is_let_go(proxy):
    """It takes the head and then nothing: the proxy held the client's connection and the
    backend's (its sendall blocked) for as long as the client stayed. 64 MiB: more than the
    socket buffers on the way hold."""
    before = _metric(proxy, CLIENT_STALLED)
    with _slow_reader(proxy) as sock:
        sock.sendall(b"GET /quick/large/64 HTTP/1.1\r\nHost: shop\r\n\r\n")
        sock.recv(1024)
        for _ in range(150):  # the backend's answer is ended by the proxy closing it
            if "/quick/large/64" in proxy.backend.sent:
                break
            time.sleep(0.1)
    assert proxy.backend.sent.get("/quick/large/64", 64 << 20) < 64 << 20
    assert _metric(proxy, CLIENT_STALLED) == before + 1
