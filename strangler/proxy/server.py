"""The data plane: an asyncio protocol per client connection, httptools for parsing.

Why not an ASGI app: measured here (docs/proxy.md), an ASGI server plus a pooled client
spends ~160-1,300 us of CPU per proxied request against nginx's ~10-24 us; working on raw
bytes with llhttp on both sides, keep-alive upstream pools and decisions precomputed at
table load keeps the overhead within a small multiple of nginx's. The routing decision,
breaker and metrics are the same pure pieces an ASGI front end would use.

Per request: headers parsed -> route decided (pure) -> upstream head written on a pooled
connection -> response head awaited (timeout) -> committed to the client, body bytes
streamed both ways with back-pressure. Nothing reaches the client before the commit, so a
failed attempt can still be retried or fall back to the monolith.

The common case (an idle pooled connection, breaker closed, backend answers) runs entirely
in protocol callbacks; anything else (connecting, retry, fallback, errors) continues in a
coroutine, which costs a task and two futures and so is kept off the fast path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable
from typing import cast

import httptools

from strangler.control.model import Backend
from strangler.control.routing import IDEMPOTENT_METHODS, SAFE_METHODS, Decision
from strangler.proxy.headers import (
    client_response_head,
    connection_tokens,
    error_response,
    request_id,
    upstream_request_head,
)
from strangler.proxy.state import ProxyState
from strangler.proxy.upstream import UpstreamConnection

log = logging.getLogger("strangler.proxy")
RETRYABLE = frozenset({"connect_failed", "connection_lost"})
NO_BODY_STATUSES = frozenset({204, 304})
IDLE_TIMEOUT = 75.0
BODY_TIMEOUT = 30.0


class Refused(Exception):
    """Raised inside a parser callback to stop parsing a request the proxy refuses."""


def origin_form(target: bytes) -> bytes:
    """`http://host/p?q` -> `/p?q`: an absolute-form target never names the upstream."""
    if target[:1] == b"/":
        return target
    if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
        slash = target.find(b"/", target.find(b"//") + 2)
        return target[slash:] if slash >= 0 else b"/"
    return target


class Exchange:
    """One request/response pair travelling through the proxy."""

    __slots__ = (
        "backend",
        "body_bytes",
        "chunked_in",
        "client",
        "committed",
        "deadline",
        "decision",
        "done",
        "fallback",
        "fast",
        "finished",
        "has_body",
        "headers",
        "http10",
        "keep_alive",
        "lower",
        "method",
        "method_str",
        "out_chunked",
        "pending_body",
        "reason",
        "req_id",
        "request_done",
        "resp_buffer",
        "resp_headers",
        "response_done",
        "started",
        "status",
        "t0",
        "t_upstream",
        "t_upstream_wait",
        "target",
        "upstream",
    )

    def __init__(
        self,
        client: ClientConnection,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        http10: bool,
        chunked_in: bool,
    ) -> None:
        self.client = client
        self.method = method
        self.method_str = method.decode("ascii")
        self.target = target
        self.headers = headers
        lower = self.lower = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in headers}
        self.keep_alive = keep_alive
        self.http10 = http10
        self.chunked_in = chunked_in  # the client has checked the codings are just chunked
        self.has_body = chunked_in or lower.get("content-length", "0") not in ("", "0")
        given = lower.get("x-request-id")
        self.req_id = request_id(given.encode("latin-1") if given else None)
        self.t0 = time.perf_counter()
        self.t_upstream = self.t_upstream_wait = 0.0
        self.decision: Decision | None = None
        self.backend: Backend | None = None
        self.pending_body: list[bytes] = []
        self.body_bytes = 0
        self.request_done = False
        self.upstream: UpstreamConnection | None = None
        self.fallback = ""
        self.fast = False
        self.deadline = 0.0  # when the response head is overdue (swept by the state)
        self.started: asyncio.Future[str] | None = None
        self.done: asyncio.Future[None] | None = None
        self.status = 0
        self.reason = b""
        self.resp_headers: list[tuple[bytes, bytes]] = []
        self.resp_buffer: list[bytes] = []
        self.response_done = self.committed = self.out_chunked = self.finished = False

    # request body from the client
    def feed_body(self, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked_in else chunk
        if self.upstream is not None:
            self.upstream.write(data)
        else:
            self.pending_body.append(data)

    def end_body(self) -> None:
        self.request_done = True
        if self.chunked_in:
            if self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
            else:
                self.pending_body.append(b"0\r\n\r\n")

    # ResponseSink: called by the upstream connection
    def on_response_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.t_upstream_wait = time.perf_counter() - self.t_upstream
        self.status, self.reason, self.resp_headers = status, reason, headers
        self.client.state.waiting.discard(self)  # its head is in: no timeout any more
        if self.fast:
            self.client.fast_head(self)
        elif self.started is not None and not self.started.done():
            self.started.set_result("ok")

    def on_response_body(self, body: bytes) -> None:
        if self.committed:
            self.client.write(b"%x\r\n%s\r\n" % (len(body), body) if self.out_chunked else body)
        else:
            self.resp_buffer.append(body)

    def on_response_complete(self, keep_alive: bool) -> None:
        self.response_done = True
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.pool.release(upstream, keep_alive and self.request_done)
        if self.committed:
            self._finish()

    def on_upstream_lost(self, got_bytes: bool) -> None:
        self.upstream = None
        if not self.status:
            self._attempt_failed("bad_response" if got_bytes else "connection_lost")
        elif not self.response_done and self._until_eof():
            self.on_response_complete(False)
        elif not self.response_done:
            self._cut()

    def on_upstream_invalid(self, reason: str) -> None:
        self.upstream = None
        if not self.status:
            self._attempt_failed("bad_response")
        else:
            self._cut()

    def pause_client(self, paused: bool) -> None:
        self.client.pause_reading(paused)

    def on_timeout(self) -> None:
        if not self.status:
            self.drop_upstream()
            self._attempt_failed("timeout")

    # helpers
    def _attempt_failed(self, reason: str) -> None:
        self._cancel_timer()
        if self.fast:
            self.fast = False
            self.client.escalate(self, reason)
        elif self.started is not None and not self.started.done():
            self.started.set_result(reason)

    def _cut(self) -> None:
        """The backend died mid-body: the client must see the response cut, not complete."""
        self.response_done = True
        if self.committed:
            self.client.abort()
        self._set_done()

    def _cancel_timer(self) -> None:
        self.client.state.waiting.discard(self)

    def drop_upstream(self) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()

    def _until_eof(self) -> bool:
        names = {n.lower() for n, _ in self.resp_headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def reset_response(self) -> None:
        self.status, self.reason, self.resp_headers, self.resp_buffer = 0, b"", [], []
        self.response_done = False

    def commit(self, state: ProxyState, backend: Backend) -> None:
        """Send the response head and anything buffered; from now on bytes stream through."""
        length = coding = None
        for name, value in self.resp_headers:  # the last of each wins, as a dict would
            size = len(name)
            if size == 14 and name.lower() == b"content-length":
                length = value
            elif size == 17 and name.lower() == b"transfer-encoding":
                coding = value
        if self.method == b"HEAD" or self.status in NO_BODY_STATUSES:
            framing = b"Content-Length: %s\r\n" % length if length is not None else b""
        elif length is not None and (coding is None or b"chunked" not in coding.lower()):
            framing = b"Content-Length: %s\r\n" % length
        elif self.http10:
            framing, self.keep_alive = b"", False  # the end of the body is the close
        else:
            framing, self.out_chunked = b"Transfer-Encoding: chunked\r\n", True
        self.keep_alive = self.keep_alive and not state.draining
        head = client_response_head(
            self.status,
            self.reason,
            self.resp_headers,
            framing,
            state.backend_header,
            backend.name.encode(),
            self.req_id,
            self.keep_alive,
            self.http10,
        )
        self.committed = True
        buffered, self.resp_buffer = self.resp_buffer, []
        if self.out_chunked:
            buffered = [b"%x\r\n%s\r\n" % (len(b), b) for b in buffered if b]
        self.client.write(head + b"".join(buffered) if buffered else head)
        if self.response_done:
            self._finish()

    def _finish(self) -> None:
        if self.out_chunked:
            self.client.write(b"0\r\n\r\n")
        self._set_done()

    def _set_done(self) -> None:
        if self.fast:
            self.fast = False
            self.client.fast_done(self)
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def client_gone(self) -> None:
        self.finished = True
        self.fast = False  # nothing is left to answer
        self._cancel_timer()
        self.drop_upstream()
        if self.started is not None and not self.started.done():
            self.started.set_result("client_gone")
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


class ClientConnection(asyncio.Protocol):
    """One client's keep-alive connection; requests are answered in order."""

    def __init__(self, state: ProxyState, connections: set[ClientConnection]) -> None:
        self.state = state
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.client_address = ""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.hosts = 0
        self.codings: list[bytes] = []
        self.parsing: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.closing = False
        self.last_active = time.monotonic()
        self.reject_status = 0
        self.reject_text = ""
        self.refusal = b""  # an error answer waiting for earlier pipelined answers
        self.corked = False
        self.out: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client_address = peer[0] if peer else "unknown"
        self.client_ip = self.client_address.encode()
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.connections.discard(self)
        queued, self.queue = list(self.queue), deque()
        for exchange in queued:
            self._abandon(exchange)

    def _abandon(self, ex: Exchange) -> None:
        """The client is gone or refused; a fast-path exchange has no coroutine to count it."""
        if ex.fast:
            self.state.metrics.in_flight -= 1
        ex.client_gone()

    def pause_writing(self) -> None:
        if self.queue and self.queue[0].upstream is not None:
            self.queue[0].upstream.pause_reading(True)

    def resume_writing(self) -> None:
        if self.queue and self.queue[0].upstream is not None:
            self.queue[0].upstream.pause_reading(False)

    def data_received(self, data: bytes) -> None:
        if self.refusal:
            return  # the parser has failed; nothing after the refused request is read
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The Upgrade header is hop-by-hop and dropped: the request is answered as plain
            # HTTP and the connection closes afterwards, so no upgraded bytes are parsed.
            pass
        except httptools.HttpParserError as error:
            if self.reject_status:
                self.reject(self.reject_status, self.reject_text)
            else:
                self.reject(400, f"malformed request: {error}")

    def _refuse(self, status: int, text: str) -> None:
        """Stop parsing; data_received answers `status` with `text` and closes."""
        self.reject_status, self.reject_text = status, text
        raise Refused

    def _too_large(self) -> None:
        self._refuse(413, f"request body larger than {self.state.max_body_bytes} bytes")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.headers, self.header_bytes = b"", [], 0
        self.hosts, self.codings = 0, []

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.state.max_header_bytes:
            self._too_many_header_bytes()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        size = len(name)
        self.header_bytes += size + len(value) + 4
        if self.header_bytes > self.state.max_header_bytes:
            self._too_many_header_bytes()
        if size == 4 and name.lower() == b"host":
            self.hosts += 1
        elif size == 17 and name.lower() == b"transfer-encoding":
            self.codings.append(value)

    def _too_many_header_bytes(self) -> None:
        self._refuse(431, f"request header section larger than {self.state.max_header_bytes} bytes")

    def _check_framing(self) -> None:
        """One Host (RFC 9112 3.2), and no transfer coding the proxy would silently drop."""
        if self.hosts > 1:
            self._refuse(400, "more than one Host header")
        if self.codings:
            codings = [c.strip().lower() for c in b",".join(self.codings).split(b",")]
            if codings != [b"chunked"]:
                shown = b", ".join(codings).decode("latin-1")
                self._refuse(501, f"Transfer-Encoding {shown!r} is not proxied; only chunked")

    def on_headers_complete(self) -> None:
        parser = self.parser
        if self.hosts > 1 or self.codings:
            self._check_framing()
        exchange = Exchange(
            self,
            parser.get_method(),
            origin_form(self.url),
            self.headers,
            parser.should_keep_alive(),
            parser.get_http_version() == "1.0",
            bool(self.codings),
        )
        # Trailer fields arrive through on_header too; they must not join this request's
        # header list, which is written upstream later (after a connect, on a retry).
        self.headers = []
        if exchange.method == b"CONNECT":
            self._refuse(501, "CONNECT tunnels are not proxied")
        if parser.should_upgrade():
            exchange.keep_alive = False
        length = exchange.lower.get("content-length", "0") or "0"
        if length.isdigit() and int(length) > self.state.max_body_bytes:
            self._too_large()
        self.parsing = exchange
        self.queue.append(exchange)
        if len(self.queue) == 1:
            self.start(exchange)
        else:
            self.pause_reading(True)  # pipelined: answer in order, read on when caught up

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is None:
            return
        if exchange.body_bytes + len(body) > self.state.max_body_bytes:
            self._too_large()
        exchange.feed_body(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.end_body()
            self.parsing = None

    # output
    def write(self, data: bytes) -> None:
        if self.corked:
            self.out.append(data)
        elif self.transport is not None and not self.closing:
            self.transport.write(data)

    def cork(self, corked: bool) -> None:
        """Collect writes while one upstream read is parsed, then send them in one syscall."""
        self.corked = corked
        if not corked and self.out:
            out, self.out = self.out, []
            if self.transport is not None and not self.closing:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def abort(self) -> None:
        self.closing = True
        self.out = []
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self, paused: bool) -> None:
        if self.transport is None or self.closing:
            return
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def reject(self, status: int, reason: str) -> None:
        """Answer a request the proxy refuses itself, then close the connection.

        Requests pipelined before it are answered first: they may have reached a backend.
        """
        self.state.metrics.rejected[(str(status),)] += 1
        refused, self.parsing = self.parsing, None
        if refused is not None and refused in self.queue:
            if refused.committed:  # its answer is under way: only a cut can end it now
                self.abort()
                return
            self.queue.remove(refused)
            self._abandon(refused)
        body = json.dumps({"error": reason, "status": status}).encode() + b"\n"
        self.refusal = error_response(status, body, request_id(None))
        if self.queue:
            self.pause_reading(True)
        else:
            self._send_refusal()

    def _send_refusal(self) -> None:
        self.write(self.refusal)
        self.close()

    def close(self) -> None:
        self.cork(False)
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def close_if_idle(self, now: float) -> None:
        """Close when idle too long or draining; also when a request body stalls."""
        idle = not self.queue and (self.state.draining or now - self.last_active > IDLE_TIMEOUT)
        stalled = (
            self.parsing is not None
            and not self.parsing.committed
            and (now - self.last_active > BODY_TIMEOUT)
        )
        if idle or stalled:
            self.close()

    # the request's life
    def start(self, ex: Exchange) -> None:
        """Decide the backend; send at once on an idle pooled connection, else go async."""
        if not ex.request_done and ex.lower.get("expect", "").lower() == "100-continue":
            # Here, not when parsed: a pipelined request's interim answer must not land
            # inside the response before it.
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        state = self.state
        compiled = state.compiled
        path = ex.target.split(b"?", 1)[0].decode("latin-1")
        ex.decision = compiled.decide(ex.method_str, path, ex.lower, self.client_address)
        backend = ex.backend = compiled.table.backends[ex.decision.backend]
        state.metrics.in_flight += 1
        if state.breakers[backend.name].state == "closed":
            pool = state.pools.get(backend.name) or state.pool(backend)
            upstream = pool.acquire_idle()
            if upstream is not None:
                ex.fast = True
                self._send(ex, upstream, backend)
                return
        self.loop.create_task(self._run(ex, self._proxy(ex)))

    def fast_head(self, ex: Exchange) -> None:
        """A response head on the fast path: commit it, or hand a 5xx to the fallback logic."""
        backend = ex.backend
        assert backend is not None
        self.state.breakers[backend.name].record(ex.status < 500, time.monotonic())
        if ex.status >= 500 and self._can_fall_back(ex):
            ex.fast = False
            self.loop.create_task(self._run(ex, self._complete(ex, None, retried=True)))
            return
        ex.commit(self.state, backend)

    def fast_done(self, ex: Exchange) -> None:
        assert ex.backend is not None
        self.state.metrics.in_flight -= 1
        self._record(ex, ex.backend)
        self._exchange_done(ex)

    def escalate(self, ex: Exchange, reason: str) -> None:
        """A fast-path attempt failed before any answer: retry or fall back in a coroutine."""
        assert ex.backend is not None
        self._failed(ex.backend, reason)
        self.loop.create_task(self._run(ex, self._complete(ex, reason, retried=False)))

    async def _run(self, ex: Exchange, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("request %s failed inside the proxy", ex.req_id.decode())
            self.abort()
        finally:
            self.state.metrics.in_flight -= 1
        self._exchange_done(ex)

    def _exchange_done(self, ex: Exchange) -> None:
        ex.finished = True
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        if self.closing:
            return
        if not ex.keep_alive or not ex.request_done:
            self.close()
        elif self.queue:
            self.pause_reading(False)
            self.start(self.queue[0])
        elif self.refusal:
            self._send_refusal()

    def _can_fall_back(self, ex: Exchange) -> bool:
        route = ex.decision.route if ex.decision else None
        return (
            route is not None
            and ex.decision is not None
            and ex.decision.role == "service"
            and route.state != "retired"
            and ex.method_str in SAFE_METHODS
            and not ex.has_body
            and route.monolith in self.state.compiled.table.backends  # a flip may remove it
        )

    async def _proxy(self, ex: Exchange) -> None:
        assert ex.backend is not None
        reason = await self._attempt(ex, ex.backend)
        await self._complete(ex, reason, retried=False)

    async def _complete(self, ex: Exchange, reason: str | None, retried: bool) -> None:
        """After a first attempt: retry once, fall back to the monolith, or answer 5xx."""
        backend = ex.backend
        assert backend is not None and ex.decision is not None
        if not retried and self._retryable(ex, reason):
            self.state.metrics.retries[(backend.name,)] += 1
            reason = await self._attempt(ex, backend)
        if self._can_fall_back(ex) and (reason is not None or ex.status >= 500):
            route = ex.decision.route
            assert route is not None
            if reason is None:
                reason = f"status_{ex.status}"
                ex.drop_upstream()
            ex.fallback = reason
            self.state.metrics.fallbacks[(route.id, reason)] += 1
            ex.reset_response()
            backend = ex.backend = self.state.compiled.table.backends[route.monolith]
            reason = await self._attempt(ex, backend)
            if self._retryable(ex, reason):
                self.state.metrics.retries[(backend.name,)] += 1
                reason = await self._attempt(ex, backend)
        if ex.finished or reason == "client_gone":
            return
        if reason is not None:
            self._fail(ex, backend, reason)
            return
        ex.commit(self.state, backend)
        if not ex.response_done:
            assert ex.done is not None
            await ex.done
        self._record(ex, backend)

    @staticmethod
    def _retryable(ex: Exchange, reason: str | None) -> bool:
        return reason in RETRYABLE and ex.method_str in IDEMPOTENT_METHODS and not ex.has_body

    def _send(self, ex: Exchange, upstream: UpstreamConnection, backend: Backend) -> None:
        """Write the request head (and any body received so far) to a backend connection."""
        ex.upstream = upstream
        ex.t_upstream = time.perf_counter()
        host = ex.lower.get("host", "").encode("latin-1")
        drop = connection_tokens(ex.headers) if "connection" in ex.lower else frozenset()
        route = ex.decision.route if ex.decision else None
        if route is not None and route.override is not None:
            drop = drop | {route.override.header.lower().encode()}
        if ex.chunked_in:
            framing = b"Transfer-Encoding: chunked\r\n"
        elif ex.has_body:
            framing = b"Content-Length: %s\r\n" % ex.lower["content-length"].encode()
        else:
            framing = b""
        head = upstream_request_head(
            ex.method, ex.target, ex.headers, drop, self.client_ip, host, ex.req_id, framing
        )
        upstream.send(ex, head + b"".join(ex.pending_body) if ex.pending_body else head)
        if ex.request_done:
            ex.pending_body = []
        ex.deadline = time.monotonic() + backend.timeout
        self.state.waiting.add(ex)

    async def _attempt(self, ex: Exchange, backend: Backend) -> str | None:
        """One try on one backend; None when a response head arrived, else why not."""
        state = self.state
        breaker = state.breakers[backend.name]
        if not breaker.allow(time.monotonic()):
            return "breaker_open"
        pool = state.pool(backend)
        upstream = pool.acquire_idle()
        if upstream is None:
            try:
                upstream = await pool.connect()
            except (OSError, TimeoutError):
                self._failed(backend, "connect_failed")
                return "connect_failed"
            if ex.finished:
                pool.release(upstream, True)
                return "client_gone"
        ex.started = self.loop.create_future()
        ex.done = self.loop.create_future()
        self._send(ex, upstream, backend)
        result = await ex.started
        if result != "ok":
            self._failed(backend, result)
            return result
        breaker.record(ex.status < 500, time.monotonic())
        return None

    def _failed(self, backend: Backend, reason: str) -> None:
        if reason == "client_gone":
            return
        self.state.breakers[backend.name].record(False, time.monotonic())
        self.state.metrics.upstream_errors[(backend.name, reason)] += 1

    def _fail(self, ex: Exchange, backend: Backend, reason: str) -> None:
        """A clean 502/503/504 that names the backend and why."""
        status = {"timeout": 504, "breaker_open": 503}.get(reason, 502)
        text = {
            "timeout": f"backend {backend.name} did not answer within {backend.timeout} s",
            "breaker_open": f"circuit breaker for backend {backend.name} is open",
            "connect_failed": f"cannot connect to backend {backend.name} ({backend.url})",
            "connection_lost": f"backend {backend.name} closed the connection without answering",
            "bad_response": f"backend {backend.name} sent an invalid response",
        }.get(reason, f"backend {backend.name} failed: {reason}")
        body = (
            json.dumps(
                {
                    "error": text,
                    "backend": backend.name,
                    "reason": reason,
                    "request_id": ex.req_id.decode(),
                }
            ).encode()
            + b"\n"
        )
        ex.status = status
        ex.keep_alive = ex.keep_alive and ex.request_done and not self.state.draining
        ex.committed = True
        self.write(
            error_response(
                status,
                body,
                ex.req_id,
                self.state.backend_header,
                backend.name.encode(),
                ex.keep_alive,
                ex.http10,
            )
        )
        self._record(ex, backend)

    def _record(self, ex: Exchange, backend: Backend) -> None:
        state = self.state
        duration = time.perf_counter() - ex.t0
        route_id = ex.decision.route.id if ex.decision and ex.decision.route else "(default)"
        overhead = max(duration - ex.t_upstream_wait, 0.0)
        state.metrics.observe(route_id, backend.name, ex.status, duration, overhead)
        if state.access_log is not None:
            record = {
                "ts": round(time.time(), 3),
                "request_id": ex.req_id.decode(),
                "method": ex.method_str,
                "path": ex.target.decode("latin-1"),
                "route": route_id,
                "backend": backend.name,
                "status": ex.status,
                "duration_ms": round(duration * 1000, 3),
                "client": self.client_address,
            }
            if ex.fallback:
                record["fallback"] = ex.fallback
            state.access_log.write(record)
