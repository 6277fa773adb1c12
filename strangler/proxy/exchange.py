"""One request/response pair through the proxy: the exchange's state machine.

Per request: route decided (pure) -> upstream head written on a pooled connection ->
response head awaited (timeout) -> committed to the client, body bytes streamed both ways
with back-pressure. Nothing reaches the client before the commit, so a failed attempt can
still be retried or fall back to the monolith (the rules are strangler.proxy.policy's).

The common case (an idle pooled connection, breaker closed, backend answers) runs entirely
in protocol callbacks; anything else (connecting, retry, fallback, errors) continues in a
coroutine, which costs a task and two futures and so is kept off the fast path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from strangler.control.model import Backend
from strangler.control.routing import Decision
from strangler.proxy.headers import (
    NO_NAMES,
    client_response_head,
    connection_tokens,
    error_response,
    upstream_request_head,
)
from strangler.proxy.policy import (
    declared_length,
    failure_body,
    failure_status,
    may_fall_back,
    may_retry,
    request_framing,
    response_framing,
)
from strangler.proxy.shadow import Capture, shadowed
from strangler.proxy.upstream import UpstreamConnection

if TYPE_CHECKING:
    from strangler.proxy.server import ClientConnection

log = logging.getLogger("strangler.proxy")
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client gone before the answer


class Exchange:
    """One request/response pair travelling through the proxy."""

    __slots__ = (
        "backend",
        "body_bytes",
        "broken",
        "capture",
        "chunked_in",
        "client",
        "committed",
        "deadline",
        "decision",
        "done",
        "error",
        "fallback",
        "fast",
        "finished",
        "has_body",
        "head_read",
        "headers",
        "http10",
        "keep_alive",
        "lower",
        "method",
        "method_str",
        "out_chunked",
        "overrides",
        "pending_body",
        "reads",
        "reads_checked",
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
        "unsent_checked",
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
        self.has_body = chunked_in or declared_length(lower.get("content-length")) > 0
        given = lower.get("x-request-id")
        self.req_id = client.state.request_ids.accept(given.encode("latin-1") if given else None)
        self.t0 = time.perf_counter()
        self.t_upstream = self.t_upstream_wait = 0.0
        self.decision: Decision | None = None
        self.overrides: frozenset[bytes] = NO_NAMES
        self.backend: Backend | None = None
        self.pending_body: list[bytes] = []
        self.body_bytes = 0
        self.request_done = False
        self.upstream: UpstreamConnection | None = None
        self.fallback = ""
        self.error = ""  # set when the response was cut after its head went to the client
        self.fast = False
        self.deadline = 0.0  # when the response head, or the body's next byte, is overdue
        # Reads of the response so far, and at the last deadline; the bytes the client had
        # not taken then: whether the answer moved since (see on_timeout).
        self.reads = self.reads_checked = self.unsent_checked = 0
        self.started: asyncio.Future[str] | None = None
        self.done: asyncio.Future[None] | None = None
        self.status = 0
        self.reason = b""
        self.resp_headers: list[tuple[bytes, bytes]] = []
        self.resp_buffer: list[bytes] = []
        self.response_done = self.committed = self.out_chunked = self.finished = False
        self.broken = False  # the response broke before anything of it was sent
        self.head_read = False  # on the fast path: a head parsed in this read, not yet judged
        self.capture: Capture | None = None  # set when the request is in its shadow share

    # request body from the client
    def feed_body(self, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        if self.capture is not None:
            self.capture.add_request(chunk)
        data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked_in else chunk
        if self.upstream is not None:
            self.upstream.write(data)
        elif not self.response_done:  # else answered already: the rest is dropped
            self.pending_body.append(data)

    def end_body(self) -> None:
        self.request_done = True
        if self.chunked_in:
            if self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
            else:
                self.pending_body.append(b"0\r\n\r\n")
        if self.upstream is not None and not self.status:
            self._arm_timeout()

    def _arm_timeout(self) -> None:
        """The backend's `timeout` for the response head runs once the request is all sent,
        and then for each stretch of the body (on_timeout).

        Before that a slow client is the one keeping it waiting (settings.client_body_timeout).
        """
        assert self.backend is not None
        self.deadline = time.monotonic() + self.backend.timeout
        self.client.state.waiting.add(self)

    # ResponseSink: called by the upstream connection
    def on_response_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.t_upstream_wait = time.perf_counter() - self.t_upstream
        self.status, self.reason, self.resp_headers = status, reason, headers
        self.reads += 1
        if self.fast:
            self.head_read = True  # judged once the whole read is parsed: see on_read_end
        elif self.started is not None and not self.started.done():
            self.started.set_result("ok")

    def on_read_end(self) -> None:
        if self.head_read:
            self.head_read = False
            self._fast_head()

    def on_response_body(self, body: bytes) -> None:
        self.reads += 1
        if self.capture is not None:
            self.capture.add_response(body)
        if self.committed:
            self.client.write(b"%x\r\n%s\r\n" % (len(body), body) if self.out_chunked else body)
        else:
            self.resp_buffer.append(body)

    def on_response_complete(self, keep_alive: bool) -> None:
        self.response_done = True
        self.client.state.waiting.discard(self)
        if self.status < 500 and self.backend is not None:
            # An answer below 500 counts as a success once whole (a 5xx counted at its head).
            self.client.state.breakers[self.backend.name].record(True, time.monotonic())
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.pool.release(upstream, keep_alive and self.request_done)
        if self.committed:
            self._finish()

    @property
    def sent_whole(self) -> bool:
        return not self.has_body  # a body may be streamed as it arrives

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
        """Swept at `deadline`: the response head is overdue (a retry, or 504), or the body
        moved no byte for a whole period (a long download that keeps moving runs on).

        Who stalled decides: the backend when the client has taken everything (the answer is
        cut, a `timeout` of the backend), the client when it took nothing of what is waiting
        for it for `client_body_timeout` (the connection is closed).
        """
        if not self.status:
            self.drop_upstream()
            self._attempt_failed("timeout")
            return
        if self.response_done:
            return
        client = self.client
        state = client.state
        unsent = client.transport.get_write_buffer_size() if client.transport else 0
        if self.reads != self.reads_checked or unsent < self.unsent_checked:
            assert self.backend is not None
            self.reads_checked, self.unsent_checked = self.reads, unsent
            self.deadline = time.monotonic() + (
                state.body_timeout if unsent else self.backend.timeout
            )
            state.waiting.add(self)
        elif unsent:
            state.metrics.client_timeouts[("response",)] += 1
            self.drop_upstream()
            client.abort()
        else:
            self.drop_upstream()
            self._cut("timeout")

    # helpers
    def _attempt_failed(self, reason: str) -> None:
        self._cancel_timer()
        if self.fast:
            self.fast = False
            self._escalate(reason)
        elif self.started is not None and not self.started.done():
            self.started.set_result(reason)

    def _cut(self, reason: str = "broken_response") -> None:
        """The backend broke (or stalled) mid-body: the client must see the response cut, not
        complete, and the backend's breaker and error counts must see a failure."""
        self.response_done = True
        self._cancel_timer()
        if self.committed:
            backend = self.backend
            assert backend is not None
            state = self.client.state
            self.error = reason
            self.capture = None  # a cut answer is nothing to compare
            state.metrics.upstream_errors[(backend.name, self.error)] += 1
            if self.status < 500:  # a 5xx head was counted against the breaker already
                state.breakers[backend.name].record(False, time.monotonic())
            self.client.abort()
        else:
            self.broken = True  # nothing sent yet: a fallback, a retry or a 502 instead
            if self.head_read:
                return  # on the fast path: on_read_end hands it on
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
        self._cancel_timer()  # armed again when the next attempt's request is sent
        self.status, self.reason, self.resp_headers, self.resp_buffer = 0, b"", [], []
        self.response_done = self.broken = False
        if self.capture is not None:
            self.capture.reset_response()

    def commit(self, backend: Backend) -> None:
        """Send the response head and anything buffered; from now on bytes stream through."""
        state = self.client.state
        line, self.out_chunked, self.keep_alive = response_framing(
            self.method,
            self.status,
            self.resp_headers,
            self.http10,
            self.keep_alive and not state.draining,
        )
        head = client_response_head(
            self.status,
            self.reason,
            self.resp_headers,
            line,
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
            self._fast_done()
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def client_gone(self) -> None:
        # Counted here, unless the coroutine that streams a committed answer counts it when
        # its `done` is set below: before any answer, as nginx logs it, 499.
        unrecorded = self.backend is not None and (self.fast or not self.committed)
        self.finished = True
        self.fast = False  # nothing is left to answer
        self._cancel_timer()
        self.drop_upstream()
        if unrecorded and not self.response_done:
            assert self.backend is not None
            if not self.committed:
                self.status = CLIENT_CLOSED_REQUEST
            self.capture = None  # half an exchange is nothing to compare
            self.t_upstream_wait = time.perf_counter() - (self.t_upstream or self.t0)
            self._record(self.backend)
        if self.started is not None and not self.started.done():
            self.started.set_result("client_gone")
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    # the request's life
    def start(self) -> None:
        """Decide the backend; send at once on an idle pooled connection, else go async."""
        client = self.client
        lower = self.lower
        if (
            "expect" in lower
            and lower["expect"].lower() == "100-continue"
            and not self.request_done
            and not self.http10
        ):
            # Here, not when parsed: a pipelined request's interim answer must not land
            # inside the response before it. HTTP/1.0 has no 1xx (RFC 9110 15.2).
            client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        state = client.state
        compiled = state.compiled
        path = self.target.split(b"?", 1)[0].decode("latin-1")
        self.decision = compiled.decide(self.method_str, path, lower, client.client_address)
        self.overrides = compiled.override_headers
        backend = self.backend = compiled.table.backends[self.decision.backend]
        route = self.decision.route
        if route is not None and route.shadow is not None and state.shadow is not None:
            policy = shadowed(self.decision, self.method_str)
            if policy is not None:
                self.capture = Capture(policy)
        state.metrics.in_flight += 1
        if state.breakers[backend.name].state == "closed":
            pool = state.pools.get(backend.name) or state.pool(backend)
            upstream = pool.acquire_idle()
            if upstream is not None:
                self.fast = True
                self._send(upstream, backend)
                return
        client.loop.create_task(self._run(self._proxy()))

    def _fast_head(self) -> None:
        """A response head on the fast path, after the read it came in: commit it, or hand a
        5xx, or an answer that broke in that read (nothing of it sent), to the logic that
        retries, falls back or answers 502."""
        backend = self.backend
        assert backend is not None
        if self.broken:
            self.fast = False
            self.client.loop.create_task(self._run(self._complete(None, retried=False)))
            return
        if self.status >= 500:
            self.client.state.breakers[backend.name].record(False, time.monotonic())
            if self._can_fall_back():
                self.fast = False
                self.client.loop.create_task(self._run(self._complete(None, retried=True)))
                return
        self.commit(backend)

    def _fast_done(self) -> None:
        assert self.backend is not None
        self.client.state.metrics.in_flight -= 1
        self._record(self.backend)
        self.client.exchange_done(self)

    def _escalate(self, reason: str) -> None:
        """A fast-path attempt failed before any answer: retry or fall back in a coroutine."""
        assert self.backend is not None
        self._failed(self.backend, reason)
        self.client.loop.create_task(self._run(self._complete(reason, retried=False)))

    async def _run(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("request %s failed inside the proxy", self.req_id.decode())
            self.client.abort()
        finally:
            self.client.state.metrics.in_flight -= 1
        self.client.exchange_done(self)

    def _can_fall_back(self) -> bool:
        backends = self.client.state.compiled.table.backends
        return may_fall_back(self.decision, self.method_str, self.has_body, backends)

    def _judged(self, backend: Backend, reason: str | None) -> str | None:
        """An attempt's failure reason: an answer that broke before anything of it was sent
        is a bad response (counted against `backend`), to retry or fall back from as one."""
        if reason is None and self.broken:
            self._failed(backend, "bad_response")
            return "bad_response"
        return reason

    async def _proxy(self) -> None:
        assert self.backend is not None
        reason = await self._attempt(self.backend)
        await self._complete(reason, retried=False)

    async def _complete(self, reason: str | None, retried: bool) -> None:
        """After a first attempt: retry once, fall back to the monolith, or answer 5xx."""
        backend = self.backend
        metrics = self.client.state.metrics
        assert backend is not None and self.decision is not None
        reason = self._judged(backend, reason)
        if not retried and not self.finished and may_retry(reason, self.method_str, self.has_body):
            metrics.retries[(backend.name,)] += 1
            reason = self._judged(backend, await self._attempt(backend))
        if self.finished:  # the client left (counted then): nobody to retry or fall back for
            return
        if self._can_fall_back() and (reason is not None or self.status >= 500):
            route = self.decision.route
            assert route is not None
            if reason is None:
                reason = f"status_{self.status}"
                self.drop_upstream()
            self.fallback = reason
            metrics.fallbacks[(route.id, reason)] += 1
            self.reset_response()
            backend = self.backend = self.client.state.compiled.table.backends[route.monolith]
            reason = self._judged(backend, await self._attempt(backend))
            if may_retry(reason, self.method_str, self.has_body):
                metrics.retries[(backend.name,)] += 1
                reason = self._judged(backend, await self._attempt(backend))
        if self.finished or reason == "client_gone":
            return
        if reason is not None:
            self._fail(backend, reason)
            return
        self.commit(backend)
        if not self.response_done:
            assert self.done is not None
            await self.done
        self._record(backend)

    def dropped_headers(self) -> frozenset[bytes]:
        """Lower-case request header names no backend gets: those Connection lists and every
        route's override header (with its secret)."""
        drop = connection_tokens(self.headers) if "connection" in self.lower else NO_NAMES
        return drop | self.overrides if self.overrides else drop

    def _send(self, upstream: UpstreamConnection, backend: Backend) -> None:
        """Write the request head (and any body received so far) to a backend connection."""
        client = self.client
        self.upstream = upstream
        self.t_upstream = time.perf_counter()
        lower = self.lower
        host = lower.get("host", "").encode("latin-1")
        drop = self.dropped_headers()
        framing = request_framing(self.chunked_in, lower.get("content-length"))
        head = upstream_request_head(
            self.method,
            self.target,
            self.headers,
            drop,
            client.client_ip,
            host,
            self.req_id,
            framing,
        )
        if self.capture is not None:
            self.capture.head = head
        upstream.send(self, head + b"".join(self.pending_body) if self.pending_body else head)
        if self.request_done:
            self.pending_body = []
            self._arm_timeout()

    async def _attempt(self, backend: Backend) -> str | None:
        """One try on one backend; None when a response head arrived, else why not."""
        state = self.client.state
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
            if self.finished:
                pool.release(upstream, True)
                return "client_gone"
        loop = self.client.loop
        self.started = loop.create_future()
        self.done = loop.create_future()
        self._send(upstream, backend)
        result = await self.started
        if result != "ok":
            self._failed(backend, result)
            return result
        if self.status >= 500:  # else counted when the answer is whole (or cut)
            breaker.record(False, time.monotonic())
        return None

    def _failed(self, backend: Backend, reason: str) -> None:
        if reason == "client_gone":
            return
        state = self.client.state
        state.breakers[backend.name].record(False, time.monotonic())
        state.metrics.upstream_errors[(backend.name, reason)] += 1

    def _fail(self, backend: Backend, reason: str) -> None:
        """A clean 502/503/504 that names the backend and why."""
        state = self.client.state
        self.status = failure_status(reason)
        self.keep_alive = self.keep_alive and self.request_done and not state.draining
        self.committed = True
        self.capture = None  # the proxy's own error answer is nothing to compare
        body = failure_body(reason, backend, self.req_id)
        self.client.write(
            error_response(
                self.status,
                body,
                self.req_id,
                state.backend_header,
                backend.name.encode(),
                self.keep_alive,
                self.http10,
                self.method == b"HEAD",
            )
        )
        self._record(backend)

    def _record(self, backend: Backend) -> None:
        state = self.client.state
        duration = time.perf_counter() - self.t0
        decision = self.decision
        route_id = decision.route.id if decision and decision.route else "(default)"
        overhead = max(duration - self.t_upstream_wait, 0.0)
        # A cut answer is counted as the 502 it would have been had it broken before its head
        # went out, so error rates read from the status label see it.
        status = 502 if self.error else self.status
        state.metrics.observe(route_id, backend.name, status, duration, overhead)
        if state.access_log is not None:
            record = {
                "ts": round(time.time(), 3),
                "request_id": self.req_id.decode(),
                "method": self.method_str,
                "path": self.target.decode("latin-1"),
                "route": route_id,
                "backend": backend.name,
                "status": self.status,
                "duration_ms": round(duration * 1000, 3),
                "client": self.client.client_address,
            }
            if self.fallback:
                record["fallback"] = self.fallback
            if self.error:
                record["error"] = self.error
            state.access_log.write(record)
        if self.capture is not None and state.shadow is not None:
            state.shadow.fire(self, self.capture, backend, duration)
