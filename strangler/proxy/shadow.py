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
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from strangler.control.model import Backend, Route
from strangler.control.routing import BUCKETS, Decision
from strangler.control.shadow import (
    SAFE_METHODS,
    SHADOW_HEADER,
    PackedPair,
    ShadowPolicy,
    pack_pair,
)
from strangler.proxy.headers import connection_tokens, upstream_request_head
from strangler.proxy.upstream import Pool, UpstreamConnection

if TYPE_CHECKING:
    from strangler.proxy.exchange import Exchange
    from strangler.proxy.metrics import ProxyMetrics

log = logging.getLogger("strangler.proxy")

ShadowOutcome = Literal[
    "sent",
    "dropped_in_flight",
    "dropped_hand_off",
    "body_too_large",
    "response_too_large",
    "request_incomplete",
    "candidate_failed",
    "secondary_failed",
]
Pair = dict[str, Any]
Consumer = Callable[[list[PackedPair]], None]
HAND_OFF_SIZE = 5000  # pairs waiting for the consumer thread; more are dropped and counted
BATCH = 500  # pairs handed to the consumer at once, at most
BATCH_SECONDS = 0.25  # how often the consumer thread looks for pairs
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

    __slots__ = ("cap", "head", "policy", "request", "request_size", "response", "response_size")

    def __init__(self, policy: ShadowPolicy) -> None:
        self.policy = policy
        self.cap = policy.max_body_bytes
        self.request: list[bytes] = []
        self.response: list[bytes] = []
        self.request_size = self.response_size = 0
        self.head = b""  # the head the primary was sent, reused when there is no body

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


class ShadowCall:
    """One shadow request on one backend, driven by the upstream connection's callbacks.

    No task, future or timer on the common path (an idle pooled connection): the request is
    written at the end of the loop iteration it was started in, with the others of that
    iteration, and the answer settles the call; the timeout is a deadline the proxy's 100 ms
    sweep enforces, as it does for client requests.
    """

    __slots__ = ("body", "cap", "conn", "deadline", "group", "headers", "method", "pool",
                 "settled", "side", "size", "started", "status", "waiting")  # fmt: skip
    client = None  # shadow answers are written nowhere: nothing to cork

    def __init__(
        self, group: ShadowGroup, side: str, pool: Pool, method: bytes, waiting: set[Any]
    ) -> None:
        self.group = group
        self.waiting = waiting
        self.side = side
        self.pool = pool
        self.method = method
        self.cap = group.policy.max_body_bytes
        self.conn: UpstreamConnection | None = None
        self.started = time.monotonic()
        self.deadline = self.started + group.policy.timeout
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.settled = False

    def send(self, conn: UpstreamConnection, request: bytes) -> None:
        self.conn = conn
        self.waiting.add(self)
        conn.send(self, request)

    def settle(self, error: str, keep_alive: bool = False) -> None:
        if self.settled:
            return
        self.settled = True
        self.waiting.discard(self)
        conn, self.conn = self.conn, None
        if conn is not None:
            if error:
                conn.abort()
            else:
                self.pool.release(conn, keep_alive)
        latency = time.monotonic() - self.started
        body = b"".join(self.body) if not error else b""
        reply = _reply(self.status if not error else 0, self.headers if not error else [],
                       body, latency, self.pool.backend.url, error,
                       self.size if not error else 0)  # fmt: skip
        self.group.settled(self.side, reply)

    def on_timeout(self) -> None:
        """Called by the sweep once `deadline` has passed (the set no longer holds it)."""
        self.settle(f"timeout after {self.group.policy.timeout} s")

    def on_response_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.status, self.headers = status, headers

    def on_response_body(self, body: bytes) -> None:
        if self.size < self.cap:
            self.body.append(body[: self.cap - self.size])
        self.size += len(body)

    def on_response_complete(self, keep_alive: bool) -> None:
        self.settle("", keep_alive)

    def on_upstream_lost(self, got_bytes: bool) -> None:
        self.conn = None
        self.settle("bad_response" if got_bytes else "connection_lost")

    def on_upstream_invalid(self, reason: str) -> None:
        self.conn = None
        self.settle("bad_response")

    def pause_client(self, paused: bool) -> None:
        pass


class ShadowGroup:
    """The shadow calls of one request (candidate, maybe secondary) and the pair they fill."""

    __slots__ = ("pair", "pending", "policy", "route", "shadower")

    def __init__(
        self, shadower: Shadower, route: Route, policy: ShadowPolicy, pair: Pair, calls: int
    ) -> None:
        self.shadower = shadower
        self.route = route
        self.policy = policy
        self.pair = pair
        self.pending = calls

    def settled(self, side: str, reply: dict[str, Any]) -> None:
        self.pair[side] = reply
        self.pending -= 1
        if self.pending == 0:
            self.shadower.complete(self)


def _reply(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    latency: float,
    base_url: str,
    error: str = "",
    size: int = -1,
) -> dict[str, Any]:
    """One side of a pair; `size` is the whole body's length, more than `body` when it was cut
    at the cap (the consumer then never compares it as if it were whole)."""
    return {
        "status": status,
        "headers": headers,  # bytes pairs: decoded off the event loop, by the consumer
        "body": body,
        "size": len(body) if size < 0 else size,
        "latency_ms": latency * 1000,
        "base_url": base_url,
        "error": error,
    }


class PairHandOff:
    """Bounded hand-off from the event loop to one consumer thread; full means drop and count.

    The thread wakes every BATCH_SECONDS and takes what is there, instead of being woken per
    pair: a thread woken a thousand times a second takes the GIL from the event loop as often.
    Pairs wait packed, and the consumer gets them packed (a local worker pipes the bytes on).
    """

    def __init__(self, consumer: Consumer, size: int = HAND_OFF_SIZE) -> None:
        self.consumer = consumer
        self.size = size
        self.pairs: deque[PackedPair] = deque()  # append, popleft are atomic: no lock needed
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._drain, name="shadow-pairs", daemon=True)
        self.thread.start()

    def offer(self, pair: Pair) -> bool:
        if len(self.pairs) >= self.size:
            return False
        self.pairs.append(pack_pair(pair))
        return True

    def _drain(self) -> None:
        while True:
            stopping = self.stopping.wait(BATCH_SECONDS)
            while self.pairs:
                batch = [self.pairs.popleft() for _ in range(min(BATCH, len(self.pairs)))]
                try:
                    self.consumer(batch)
                except Exception:  # a consumer failure loses this batch, never the proxy
                    log.exception("shadow pair consumer failed; %d pairs lost", len(batch))
            if stopping:
                return

    def close(self, timeout: float = 10.0) -> None:
        """Let the consumer take what is queued (up to `timeout` s), then stop it."""
        self.stopping.set()
        self.thread.join(timeout)
        close = getattr(self.consumer, "close", None)
        if close is not None:
            close()


class Shadower:
    """Starts the shadow calls of one worker and hands the captured pairs off."""

    def __init__(
        self, metrics: ProxyMetrics, hand_off: PairHandOff | None, waiting: set[Any]
    ) -> None:
        self.metrics = metrics
        self.hand_off = hand_off
        self.waiting = waiting  # the proxy's set of deadlines, swept every 100 ms
        self.in_flight = 0
        self.pools: dict[str, Pool] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.unsent: list[tuple[ShadowCall, UpstreamConnection, bytes]] = []

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
        # Never repeat a write on the monolith; the noise call goes out for a sample only.
        if ex.method_str in SAFE_METHODS and random.random() < policy.noise_share:
            secondary = backends.get(policy.secondary or route.monolith)
        body = b"".join(capture.request)
        if not body and not ex.chunked_in and capture.head.endswith(b"\r\n\r\n"):
            # The primary's own head, marked: the mark goes last, before the blank line.
            head = capture.head[:-2] + SHADOW_MARK + b"\r\n"
        else:
            drop = connection_tokens(ex.headers) if "connection" in ex.lower else frozenset()
            if route.override is not None:
                drop = drop | {route.override.header.lower().encode()}
            framing = b"Content-Length: %d\r\n" % len(body) if body else b""
            # The mark rides with the framing line: a client's own X-Strangler-Shadow is one
            # of the headers upstream_request_head removes.
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
                         backend.url, size=capture.response_size)  # fmt: skip
        pair: Pair = {
            "route": route.id,
            "method": ex.method_str,
            "path": ex.target,  # bytes, like the headers: decoded by the consumer
            "at": time.time(),
            "request_headers": ex.headers,
            "request_body": body,
            "primary": primary,
            "compare": policy.compare,
            "record": bool(policy.record_share) and random.random() < policy.record_share,
            "redact": policy.redact,
        }
        group = ShadowGroup(self, route, policy, pair, 2 if secondary is not None else 1)
        pair["secondary"] = None
        self.in_flight += 1
        request = head + body
        self._start(group, "candidate", candidate, request, ex.method)
        if secondary is not None:
            self._start(group, "secondary", secondary, request, ex.method)

    def _pool(self, backend: Backend, policy: ShadowPolicy) -> Pool:
        """This worker's own pool for shadow calls to a backend (never the clients' pool)."""
        pool = self.pools.get(backend.name)
        if pool is None or pool.backend.url != backend.url:
            if pool is not None:
                pool.close()
            pool = self.pools[backend.name] = Pool(backend, max_idle=policy.max_in_flight)
        return pool

    def _start(
        self, group: ShadowGroup, side: str, backend: Backend, request: bytes, method: bytes
    ) -> None:
        pool = self._pool(backend, group.policy)
        call = ShadowCall(group, side, pool, method, self.waiting)
        conn = pool.acquire_idle()
        if conn is not None:
            if not self.unsent:
                asyncio.get_running_loop().call_soon(self._send_unsent)
            self.unsent.append((call, conn, request))
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(call, pool, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _send_unsent(self) -> None:
        """The shadow requests of one loop iteration, written back to back at its end: the
        first write wakes the candidate, the others find it awake (a wake-up is most of what
        a small loopback write costs)."""
        unsent, self.unsent = self.unsent, []
        for call, conn, request in unsent:
            call.send(conn, request)

    async def _connect_and_send(self, call: ShadowCall, pool: Pool, request: bytes) -> None:
        try:
            conn = await pool.connect()
        except (OSError, TimeoutError):
            call.settle("connect_failed")
            return
        call.send(conn, request)

    def complete(self, group: ShadowGroup) -> None:
        """Every call of a request has settled: count, and hand the pair off."""
        self.in_flight -= 1
        route, pair = group.route, group.pair
        self.count(route, "sent")
        primary, candidate = pair["primary"], pair["candidate"]
        if candidate["error"]:
            self.count(route, "candidate_failed")
        if primary["size"] > len(primary["body"]) or candidate["size"] > len(candidate["body"]):
            self.count(route, "response_too_large")  # handed off all the same, counted there
        secondary = pair.get("secondary")
        if secondary is not None and secondary["error"]:
            self.count(route, "secondary_failed")
            pair["secondary"] = None  # no noise reading beats a wrong one
        if self.hand_off is not None and not self.hand_off.offer(pair):
            self.count(route, "dropped_hand_off")

    async def close(self, timeout: float = 5.0) -> None:
        """Wait for shadow calls in flight (their own timeouts bound this), then close pools."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for pool in self.pools.values():
            pool.close()
