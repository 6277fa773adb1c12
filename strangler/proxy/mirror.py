"""The mirror process: makes the shadow calls of one proxy worker and passes the completed
pairs to what compares them, so a shadow call costs the proxy's event loop nothing.

A proxy worker hands each shadowed exchange (its request and the primary's answer) over a
pipe (strangler.proxy.shadow.MirrorProcess); this process sends it to the candidate (and
the secondary for noise), on connections of its own, with the call's own timeout, at most
`max_in_flight` requests of a route in flight and as many waiting for a slot, HELD_BYTES of their
bodies at most (more are dropped and counted), and no breaker. Completed
pairs go to a bounded hand-off that one consumer thread drains (the comparisons, or a Celery
publisher); the outcome counts go back to the worker, which shows them on its /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import pickle
import random
import signal
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

import uvloop

from strangler.control.model import Backend
from strangler.control.shadow import SAFE_METHODS, ShadowPolicy
from strangler.proxy.processes import signal_on_parent_death
from strangler.proxy.upstream import Pool, UpstreamConnection

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
    "lost",
]
FINISHED = "finished"  # not an outcome: pairs the mirror is done with, stored or dropped
Pair = dict[str, Any]
Consumer = Callable[[list[Pair]], None]
Counts = dict[tuple[str, str], int]  # (route, outcome) -> how many since the last report
HAND_OFF_SIZE = 5000  # completed pairs waiting for the consumer thread; more are dropped
# ... and the bytes of their bodies, the consumer's batch included (a pair larger than that
# is taken when it is alone)
HAND_OFF_BYTES = 64 * 1024 * 1024
# Bodies of the pairs in flight or waiting for a slot: request, primary answer, and each call's
# answer counted at its max_body_bytes (a pair larger than that is taken when it is alone).
HELD_BYTES = 64 * 1024 * 1024
BATCH = 500  # pairs handed to the consumer at once, at most
BATCH_SECONDS = 0.25  # how often the consumer thread looks for pairs
LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class Mirrored:
    """What the mirror needs of a route to shadow its requests: resolved once per table."""

    route: str
    policy: ShadowPolicy
    candidate: Backend
    secondary: Backend | None  # None: the table names no backend for the noise call


def frame(payload: bytes) -> bytes:
    """One message on a pipe: its length, then its bytes."""
    return LENGTH.pack(len(payload)) + payload


class FrameReader(asyncio.Protocol):
    """The messages arriving on a pipe, each passed whole to `receive`; `lost` on EOF."""

    def __init__(self, receive: Callable[[bytes], None], lost: Callable[[], None]) -> None:
        self.receive = receive
        self.lost = lost
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while len(buffer) - start >= LENGTH.size:
            (size,) = LENGTH.unpack_from(buffer, start)
            end = start + LENGTH.size + size
            if len(buffer) < end:
                break
            self.receive(bytes(buffer[start + LENGTH.size : end]))
            start = end
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()


def own_fd(conn: Connection) -> int:
    """A file descriptor of our own for a multiprocessing connection's pipe end, so the event
    loop's transport can close it without the Connection closing it again."""
    fd = os.dup(conn.fileno())
    conn.close()
    return fd


class _Closed(asyncio.Protocol):
    def __init__(self, lost: Callable[[], None]) -> None:
        self.lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()


async def pipe_writer(fd: int, lost: Callable[[], None] = lambda: None) -> asyncio.WriteTransport:
    """A transport writing to a pipe; `lost` is called when the pipe is closed or broken."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(lambda: _Closed(lost), os.fdopen(fd, "wb", 0))
    return transport


async def pipe_reader(fd: int, reader: FrameReader) -> asyncio.ReadTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: reader, os.fdopen(fd, "rb", 0))
    return transport


class ShadowCall:
    """One shadow request on one backend, driven by the upstream connection's callbacks.

    No task, future or timer on the common path (an idle pooled connection): the answer
    settles the call; the timeout is a deadline the mirror's 100 ms sweep enforces.
    """

    __slots__ = ("body", "cap", "conn", "connecting", "deadline", "group", "headers", "method",
                 "pool", "settled", "side", "size", "started", "status", "waiting")  # fmt: skip
    client = None  # shadow answers are written nowhere: nothing to cork
    sent_whole = True  # a shadow request is written at once, its body captured before

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
        self.connecting: asyncio.Task[None] | None = None  # opening a connection for it
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
        reply = reply_of(self.status if not error else 0, self.headers if not error else [],
                         body, latency, self.pool.backend.url, error,
                         self.size if not error else 0)  # fmt: skip
        self.group.settled(self.side, reply)

    def on_timeout(self) -> None:
        """Called by the sweep once `deadline` has passed (the set no longer holds it)."""
        if self.connecting is not None:
            self.connecting.cancel()  # a connect that never got an answer: its socket closed
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
        if self.status and not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        ):
            self.settle("")  # a body framed by the connection's end, as the proxy reads one
            return
        self.settle("bad_response" if got_bytes else "connection_lost")

    def on_upstream_invalid(self, reason: str) -> None:
        self.conn = None
        self.settle("bad_response")

    def pause_client(self, paused: bool) -> None:
        pass

    def on_read_end(self) -> None:
        pass


class ShadowGroup:
    """The shadow calls of one request (candidate, maybe secondary) and the pair they fill."""

    __slots__ = ("held", "mirror", "pair", "pending", "policy", "route")

    def __init__(
        self, mirror: Mirror, route: str, policy: ShadowPolicy, pair: Pair, calls: int, held: int
    ):
        self.mirror = mirror
        self.route = route
        self.policy = policy
        self.pair = pair
        self.pending = calls
        self.held = held  # bytes counted against the mirror's HELD_BYTES

    def settled(self, side: str, reply: dict[str, Any]) -> None:
        self.pair[side] = reply
        self.pending -= 1
        if self.pending == 0:
            self.mirror.complete(self)


def reply_of(
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
        "headers": headers,  # bytes pairs: decoded by the consumer
        "body": body,
        "size": len(body) if size < 0 else size,
        "latency_ms": latency * 1000,
        "base_url": base_url,
        "error": error,
    }


def _body_bytes(pair: Pair) -> int:
    sides = (pair.get("primary"), pair.get("candidate"), pair.get("secondary"))
    return len(pair.get("request_body", b"")) + sum(len(s["body"]) for s in sides if s)


class PairHandOff:
    """Bounded hand-off from the mirror's event loop to one consumer thread; full (in pairs,
    or in bytes of bodies until the consumer is done with them) means drop.

    The thread wakes every BATCH_SECONDS and takes what is there, instead of being woken per
    pair: a thread woken a thousand times a second takes the GIL from the loop as often.
    `done` is told, from the thread, the routes of each batch once the consumer returned,
    and whether it raised (the batch lost).
    """

    def __init__(
        self,
        consumer: Consumer,
        size: int = HAND_OFF_SIZE,
        done: Callable[[Counter[str], bool], None] | None = None,
        max_bytes: int = HAND_OFF_BYTES,
    ) -> None:
        self.consumer = consumer
        self.size = size
        self.done = done
        self.max_bytes = max_bytes
        self.bytes = 0  # bodies offered and not yet done with by the consumer
        self.lock = threading.Lock()  # for `bytes`, changed by both threads
        self.pairs: deque[Pair] = deque()  # append, popleft are atomic: no lock needed
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._drain, name="shadow-pairs", daemon=True)
        self.thread.start()

    def offer(self, pair: Pair) -> bool:
        size = _body_bytes(pair)
        with self.lock:
            if len(self.pairs) >= self.size or (self.bytes and self.bytes + size > self.max_bytes):
                return False
            self.bytes += size
        self.pairs.append(pair)
        return True

    def _drain(self) -> None:
        while True:
            stopping = self.stopping.wait(BATCH_SECONDS)
            while self.pairs:
                batch = [self.pairs.popleft() for _ in range(min(BATCH, len(self.pairs)))]
                size = sum(_body_bytes(pair) for pair in batch)
                failed = False
                try:
                    self.consumer(batch)
                except Exception:  # a consumer failure loses this batch, never the mirror
                    log.exception("shadow pair consumer failed; %d pairs lost", len(batch))
                    failed = True
                with self.lock:
                    self.bytes -= size
                if self.done is not None:
                    self.done(Counter(str(pair["route"]) for pair in batch), failed)
            if stopping:
                return

    def close(self, timeout: float = 10.0) -> None:
        """Let the consumer take what is queued (up to `timeout` s), then stop it."""
        self.stopping.set()
        self.thread.join(timeout)
        close = getattr(self.consumer, "close", None)
        if close is not None:
            close()


class Mirror:
    """Starts the shadow calls of the pairs a proxy worker sends, and hands them on."""

    def __init__(
        self, hand_off: PairHandOff, report: Callable[[], None], max_held: int = HELD_BYTES
    ) -> None:
        self.hand_off = hand_off
        self.max_held = max_held
        self.held = 0  # bytes of the pairs in flight or waiting (see HELD_BYTES)
        self.report = report  # sends the counts to the proxy worker
        self.routes: dict[int, Mirrored] = {}  # the worker's keys for the routes it shadows
        self.counts: Counts = Counter()
        self.waiting: set[ShadowCall] = set()
        # By route: `max_in_flight` is a route's, so a hung candidate takes its own slots.
        self.in_flight: Counter[str] = Counter()
        self.queued: dict[str, deque[tuple[Mirrored, Pair, int]]] = {}  # waiting for a slot
        self.pools: dict[str, Pool] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def receive(self, message: bytes) -> None:
        """One message from the worker: (forget the routes held, new routes by key,
        [(key, marshal bytes of a pair)])."""
        forget, routes, pairs = pickle.loads(message)
        if forget:
            self.routes.clear()
        self.routes.update(routes)
        for key, data in pairs:
            self.admit(self.routes[key], marshal.loads(data))

    def admit(self, mirrored: Mirrored, pair: Pair) -> None:
        """Start a pair's calls, or let it wait for a slot of its route, or drop it: past the
        route's `max_in_flight` waiting, or past HELD_BYTES."""
        route, policy = mirrored.route, mirrored.policy
        size = len(pair["shadow_head"]) + _body_bytes(pair) + policy.max_body_bytes
        full = self.in_flight[route] >= policy.max_in_flight
        # Exchanges come in batches: as many again may wait for a call to settle.
        queued = self.queued.setdefault(route, deque()) if full else None
        if (queued is not None and len(queued) >= policy.max_in_flight) or (
            self.held and self.held + size > self.max_held
        ):
            self.counts[(route, "dropped_in_flight")] += 1
            self.counts[(route, FINISHED)] += 1
            return
        self.held += size
        if queued is not None:
            queued.append((mirrored, pair, size))
        else:
            self.start(mirrored, pair, size)

    def start(self, mirrored: Mirrored, pair: Pair, held: int) -> None:
        route, policy = mirrored.route, mirrored.policy
        request = pair.pop("shadow_head") + pair["request_body"]
        secondary = None
        # Never repeat a write on the monolith; the noise call goes out for a sample only.
        if pair["method"] in SAFE_METHODS and random.random() < policy.noise_share:
            secondary = mirrored.secondary
        if secondary is not None:  # its answer too, counted at the cap
            self.held += policy.max_body_bytes
            held += policy.max_body_bytes
        pair["secondary"] = None
        pair["compare"] = policy.compare
        pair["redact"] = policy.redact
        pair["record"] = bool(policy.record_share) and random.random() < policy.record_share
        group = ShadowGroup(self, route, policy, pair, 2 if secondary is not None else 1, held)
        self.in_flight[route] += 1
        method = pair["method"].encode()
        self._call(group, "candidate", mirrored.candidate, request, method)
        if secondary is not None:
            self._call(group, "secondary", secondary, request, method)

    def _pool(self, backend: Backend, policy: ShadowPolicy) -> Pool:
        pool = self.pools.get(backend.name)
        if pool is None or pool.backend.url != backend.url:
            if pool is not None:
                pool.close()
            pool = self.pools[backend.name] = Pool(backend, max_idle=policy.max_in_flight)
        return pool

    def _call(
        self, group: ShadowGroup, side: str, backend: Backend, request: bytes, method: bytes
    ) -> None:
        pool = self._pool(backend, group.policy)
        call = ShadowCall(group, side, pool, method, self.waiting)
        conn = pool.acquire_idle()
        if conn is not None:
            call.send(conn, request)
            return
        # Swept while it connects too: the call's deadline is the policy's `timeout`, not the
        # backend's connect_timeout (a candidate that never accepts held its slot that long).
        self.waiting.add(call)
        task = call.connecting = asyncio.get_running_loop().create_task(
            self._connect_and_send(call, pool, request)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect_and_send(self, call: ShadowCall, pool: Pool, request: bytes) -> None:
        try:
            conn = await pool.connect()
        except (OSError, TimeoutError):
            call.settle("connect_failed")
            return
        call.connecting = None
        if call.settled:  # timed out as the connection came
            conn.abort()
            return
        call.send(conn, request)

    def complete(self, group: ShadowGroup) -> None:
        """Every call of a request has settled: count, hand the pair on, start the next."""
        route, pair, counts = group.route, group.pair, self.counts
        self.in_flight[route] -= 1
        self.held -= group.held
        queued = self.queued.get(route)
        if queued:
            self.start(*queued.popleft())
        counts[(route, "sent")] += 1
        primary, candidate = pair["primary"], pair["candidate"]
        if candidate["error"]:
            counts[(route, "candidate_failed")] += 1
        if primary["size"] > len(primary["body"]) or candidate["size"] > len(candidate["body"]):
            counts[(route, "response_too_large")] += 1  # handed on all the same, counted there
        secondary = pair["secondary"]
        if secondary is not None and secondary["error"]:
            counts[(route, "secondary_failed")] += 1
            pair["secondary"] = None  # no noise reading beats a wrong one
        if not self.hand_off.offer(pair):
            counts[(route, "dropped_hand_off")] += 1
            counts[(route, FINISHED)] += 1

    def finished(self, routes: Counter[str], lost: bool = False) -> None:
        """The consumer is done with a batch (on the loop's thread): told at once, so a
        process killed just after is not said to have lost it. `lost`: the batch is lost
        and the consumer keeps no count of its own: it is counted dropped."""
        for route, n in routes.items():
            self.counts[(route, FINISHED)] += n
            if lost:
                self.counts[(route, "dropped_hand_off")] += n
        self.report()

    def busy(self) -> bool:
        """Calls in flight, or requests waiting for a slot."""
        return any(self.in_flight.values()) or any(self.queued.values())

    def sweep(self, now: float) -> None:
        for call in [call for call in self.waiting if call.deadline <= now]:
            call.on_timeout()

    def take_counts(self) -> Counts:
        counts, self.counts = self.counts, Counter()
        return counts

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def serve_mirror(
    reader: Connection,
    writer: Connection,
    consumer_factory: Callable[[int], Consumer],
    worker: int,
) -> None:
    """The mirror process of proxy worker `worker`: until the worker closes its pipe (or
    dies), then the calls in flight finish (their timeouts bound it) and the queue drains."""
    # The consumer thread shares this GIL: let a shadow answer wait at most 1 ms for it, so
    # the latencies the mirror measures are the backends', not the comparisons'.
    sys.setswitchinterval(0.001)
    # Orphaned, a mirror somebody stopped (SIGSTOP) is continued, reads the pipe's EOF and
    # exits, instead of staying stopped with nobody left to stop it (harmless when it runs).
    signal_on_parent_death(signal.SIGCONT)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvloop.run(_mirror(own_fd(reader), own_fd(writer), consumer_factory, worker))


async def _mirror(
    read_fd: int,
    write_fd: int,
    consumer_factory: Callable[[int], Consumer],
    worker: int,
) -> None:
    loop = asyncio.get_running_loop()
    consumer = consumer_factory(worker)
    # A consumer that keeps no count of its own losses (the Celery publisher): a batch it
    # raised on is counted dropped here.
    uncounted = not getattr(consumer, "counts_its_losses", False)

    def finished(routes: Counter[str], failed: bool) -> None:  # on the consumer thread
        loop.call_soon_threadsafe(mirror.finished, routes, failed and uncounted)

    report = await pipe_writer(write_fd)

    def send_counts() -> None:
        counts = mirror.take_counts()
        if counts and not report.is_closing():
            report.write(frame(pickle.dumps(dict(counts))))

    mirror = Mirror(PairHandOff(consumer, done=finished), send_counts)
    hand_off = mirror.hand_off
    closed = loop.create_future()

    def eof() -> None:
        if not closed.done():
            closed.set_result(None)

    await pipe_reader(read_fd, FrameReader(mirror.receive, eof))

    while not closed.done():  # the sweep and the counts every 0.1 s
        await asyncio.wait([closed], timeout=0.1)
        mirror.sweep(time.monotonic())
        send_counts()
    # Calls in flight, then the ones waiting for their slots: two timeouts at most.
    longest = max((r.policy.timeout for r in mirror.routes.values()), default=0)
    deadline = time.monotonic() + 2 * longest
    while mirror.busy() and time.monotonic() < deadline + 1:
        await asyncio.sleep(0.05)
        mirror.sweep(time.monotonic())
    await loop.run_in_executor(None, hand_off.close)
    await asyncio.sleep(0)  # the consumer thread's last `finished` callbacks
    send_counts()
    mirror.close()
    with contextlib.suppress(OSError):
        report.close()
