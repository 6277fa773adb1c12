"""Shadow traffic: a sampled share of a route's requests also goes to a candidate (and a
secondary for noise), after the client has its answer and on connections of its own.

Nothing here can delay, alter or fail the client's answer: shadow calls start once the
primary exchange is recorded, have their own timeout, at most `max_in_flight` per worker
(more are dropped and counted), their own pools and no breaker. Captured pairs go to a
bounded hand-off that a consumer thread drains; comparisons never run on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from strangler.control.model import Backend, Route
from strangler.control.routing import BUCKETS, Decision
from strangler.control.shadow import SHADOW_HEADER, ShadowPolicy
from strangler.proxy.headers import connection_tokens, upstream_request_head
from strangler.proxy.upstream import Pool

if TYPE_CHECKING:
    from strangler.proxy.exchange import Exchange
    from strangler.proxy.metrics import ProxyMetrics

log = logging.getLogger("strangler.proxy")

ShadowOutcome = Literal[
    "sent",
    "dropped_in_flight",
    "dropped_hand_off",
    "body_too_large",
    "request_incomplete",
    "candidate_failed",
    "secondary_failed",
]
Pair = dict[str, Any]
Consumer = Callable[[list[Pair]], None]
HAND_OFF_SIZE = 2000  # pairs waiting for the consumer thread; more are dropped and counted
BATCH = 200  # pairs handed to the consumer at once
SHADOW_MARK = SHADOW_HEADER.encode() + b": 1\r\n"


def shadowed(decision: Decision, method: str) -> ShadowPolicy | None:
    """The route's policy when this request is in its shadow share, else None.

    Only requests the monolith answers are shadowed (their answer is the primary). The share
    is counted from the top bucket down, so the users shadowed are the last to be moved to
    the service by the weight (which takes buckets from the bottom), and it stays sticky.
    """
    route = decision.route
    if route is None or decision.role != "monolith":
        return None
    policy = route.shadow
    if policy is None or not policy.threshold or method not in policy.methods:
        return None
    return policy if decision.bucket >= BUCKETS - policy.threshold else None


class Capture:
    """Request and primary response bytes of one shadowed exchange, each up to a cap."""

    __slots__ = ("cap", "policy", "request", "request_size", "response", "response_size")

    def __init__(self, policy: ShadowPolicy) -> None:
        self.policy = policy
        self.cap = policy.max_body_bytes
        self.request: list[bytes] = []
        self.response: list[bytes] = []
        self.request_size = self.response_size = 0

    def add_request(self, chunk: bytes) -> None:
        self.request_size += len(chunk)
        if self.request_size <= self.cap:
            self.request.append(chunk)

    def add_response(self, chunk: bytes) -> None:
        if self.response_size < self.cap:
            self.response.append(chunk[: self.cap - self.response_size])
        self.response_size += len(chunk)

    def reset_response(self) -> None:
        self.response, self.response_size = [], 0


class _Muted:
    """Stands in for a client connection: shadow answers are never written anywhere."""

    corked = False

    def cork(self, corked: bool) -> None:
        pass


_MUTED = _Muted()


class ShadowCall:
    """The ResponseSink of one shadow request: keeps status, headers and capped body."""

    client = _MUTED

    def __init__(self, method: bytes, cap: int, done: asyncio.Future[str]) -> None:
        self.method = method
        self.cap = cap
        self.done = done
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.keep_alive = False

    def _settle(self, outcome: str) -> None:
        if not self.done.done():
            self.done.set_result(outcome)

    def on_response_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.status, self.headers = status, headers

    def on_response_body(self, body: bytes) -> None:
        if self.size < self.cap:
            self.body.append(body[: self.cap - self.size])
        self.size += len(body)

    def on_response_complete(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self._settle("ok")

    def on_upstream_lost(self, got_bytes: bool) -> None:
        self._settle("bad_response" if got_bytes else "connection_lost")

    def on_upstream_invalid(self, reason: str) -> None:
        self._settle("bad_response")

    def pause_client(self, paused: bool) -> None:
        pass


def _reply(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    latency: float,
    base_url: str,
    error: str = "",
) -> dict[str, Any]:
    return {
        "status": status,
        "headers": tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
        "body": body,
        "latency_ms": latency * 1000,
        "base_url": base_url,
        "error": error,
    }


class PairHandOff:
    """Bounded queue from the event loop to one consumer thread; full means drop and count."""

    def __init__(self, consumer: Consumer, size: int = HAND_OFF_SIZE) -> None:
        self.consumer = consumer
        self.queue: queue.Queue[Pair | None] = queue.Queue(size)
        self.thread = threading.Thread(target=self._drain, name="shadow-pairs", daemon=True)
        self.thread.start()

    def offer(self, pair: Pair) -> bool:
        try:
            self.queue.put_nowait(pair)
        except queue.Full:
            return False
        return True

    def _drain(self) -> None:
        stop = False
        while not stop:
            first = self.queue.get()
            batch = [first] if first is not None else []
            stop = first is None
            while len(batch) < BATCH and not stop:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                try:
                    self.consumer(batch)
                except Exception:  # a consumer failure loses this batch, never the proxy
                    log.exception("shadow pair consumer failed; %d pairs lost", len(batch))

    def close(self, timeout: float = 10.0) -> None:
        """Let the consumer finish what is queued (up to `timeout` s), then stop it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    return
        self.thread.join(max(0.0, deadline - time.monotonic()))


class Shadower:
    """Starts the shadow calls of one worker and hands the captured pairs off."""

    def __init__(self, metrics: ProxyMetrics, hand_off: PairHandOff | None) -> None:
        self.metrics = metrics
        self.hand_off = hand_off
        self.in_flight = 0
        self.pools: dict[str, Pool] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def count(self, route: Route, outcome: ShadowOutcome) -> None:
        self.metrics.shadow[(route.id, outcome)] += 1

    def fire(self, ex: Exchange, capture: Capture, backend: Backend, latency: float) -> None:
        """The primary exchange is recorded: start its shadow calls, or count why not."""
        decision = ex.decision
        assert decision is not None and decision.route is not None
        route, policy = decision.route, capture.policy
        if backend.name != route.monolith or ex.fallback:
            return  # answered by something else than the primary it would be compared with
        if not ex.request_done:
            self.count(route, "request_incomplete")
            return
        if capture.request_size > capture.cap:
            self.count(route, "body_too_large")
            return
        if self.in_flight >= policy.max_in_flight:
            self.count(route, "dropped_in_flight")
            return
        backends = ex.client.state.compiled.table.backends
        candidate = backends.get(policy.candidate)
        if candidate is None:
            return
        secondary = None
        if ex.method_str in ("GET", "HEAD", "OPTIONS"):  # never repeat a write on the monolith
            secondary = backends.get(policy.secondary or route.monolith)
        body = b"".join(capture.request)
        drop = connection_tokens(ex.headers) if "connection" in ex.lower else frozenset()
        if route.override is not None:
            drop = drop | {route.override.header.lower().encode()}
        framing = b"Content-Length: %d\r\n" % len(body) if body else b""
        # The mark rides with the framing line: a client's own X-Strangler-Shadow is one of the
        # headers upstream_request_head removes.
        head = upstream_request_head(
            ex.method,
            ex.target,
            ex.headers,
            drop,
            ex.client.client_ip,
            ex.lower.get("host", "").encode("latin-1"),
            ex.req_id,
            SHADOW_MARK + framing,
        )
        primary = _reply(ex.status, ex.resp_headers, b"".join(capture.response), latency,
                         backend.url)  # fmt: skip
        pair: Pair = {
            "route": route.id,
            "method": ex.method_str,
            "path": ex.target.decode("latin-1"),
            "at": time.time(),
            "request_headers": tuple(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in ex.headers
            ),
            "request_body": body,
            "primary": primary,
            "compare": policy.compare,
            "record": random.random() * 100 < policy.record_percent,
            "redact": policy.redact,
        }
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(
            self._shadow(pair, route, policy, head + body, ex.method, candidate, secondary)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _shadow(
        self,
        pair: Pair,
        route: Route,
        policy: ShadowPolicy,
        request: bytes,
        method: bytes,
        candidate: Backend,
        secondary: Backend | None,
    ) -> None:
        try:
            calls = [self._call(candidate, request, method, policy)]
            if secondary is not None:
                calls.append(self._call(secondary, request, method, policy))
            replies = await asyncio.gather(*calls)
            pair["candidate"] = replies[0]
            pair["secondary"] = replies[1] if secondary is not None else None
            self.count(route, "sent")
            if replies[0]["error"]:
                self.count(route, "candidate_failed")
            if secondary is not None and replies[1]["error"]:
                self.count(route, "secondary_failed")
                pair["secondary"] = None  # no noise reading beats a wrong one
            if self.hand_off is not None and not self.hand_off.offer(pair):
                self.count(route, "dropped_hand_off")
        finally:
            self.in_flight -= 1

    async def _call(
        self, backend: Backend, request: bytes, method: bytes, policy: ShadowPolicy
    ) -> dict[str, Any]:
        """One shadow request on this worker's own pool for the backend; errors are values."""
        pool = self.pools.get(backend.name)
        if pool is None or pool.backend.url != backend.url:
            if pool is not None:
                pool.close()
            pool = self.pools[backend.name] = Pool(backend, max_idle=policy.max_in_flight)
        started = time.perf_counter()
        conn = pool.acquire_idle()
        if conn is None:
            try:
                conn = await pool.connect()
            except (OSError, TimeoutError):
                return _reply(0, [], b"", time.perf_counter() - started, backend.url,
                              "connect_failed")  # fmt: skip
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        call = ShadowCall(method, policy.max_body_bytes, done)
        conn.send(call, request)
        try:
            outcome = await asyncio.wait_for(done, policy.timeout)
        except TimeoutError:
            conn.abort()
            return _reply(0, [], b"", time.perf_counter() - started, backend.url,
                          f"timeout after {policy.timeout} s")  # fmt: skip
        latency = time.perf_counter() - started
        if outcome != "ok":
            conn.abort()
            return _reply(0, [], b"", latency, backend.url, outcome)
        pool.release(conn, call.keep_alive)
        return _reply(call.status, call.headers, b"".join(call.body), latency, backend.url)

    async def close(self, timeout: float = 5.0) -> None:
        """Wait for shadow calls in flight (their own timeouts bound this), then close pools."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
        for pool in self.pools.values():
            pool.close()
