"""Shadow traffic, the proxy worker's part: which requests are shadowed, what is captured
of them, and the hand-off of each captured exchange to the worker's mirror process
(strangler.proxy.mirror), which makes the shadow calls and passes the pairs on.

Nothing here can delay, alter or fail the client's answer: an exchange is handed over once
the primary exchange is recorded, packed into one bytes object and written to the mirror's
pipe with the others of the next 20 ms; a pipe already holding MAX_UNSENT bytes
the mirror has not read means drop and count (`dropped_hand_off`), never a queue without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import multiprocessing
import pickle
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strangler.control.model import Route
from strangler.control.routing import BUCKETS, Decision
from strangler.control.shadow import SHADOW_HEADER, ShadowPolicy
from strangler.proxy.headers import upstream_request_head
from strangler.proxy.mirror import (
    FINISHED,
    Consumer,
    FrameReader,
    Mirrored,
    ShadowOutcome,
    frame,
    own_fd,
    pipe_reader,
    pipe_writer,
    reply_of,
    serve_mirror,
)

if TYPE_CHECKING:
    from strangler.control.model import Backend
    from strangler.proxy.exchange import Exchange
    from strangler.proxy.metrics import ProxyMetrics

log = logging.getLogger("strangler.proxy")

FLUSH_SECONDS = 0.02  # how long a handed-over exchange waits for others to share its write
MAX_UNSENT = 8 * 1024 * 1024  # bytes written to the mirror's pipe and not yet read by it
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


class MirrorProcess:
    """A proxy worker's mirror process: spawned at start, fed exchanges over a pipe, and
    started again when it dies; what the dead one held is counted `lost` here, by the worker
    that outlives it. The outcome counts it sends back go into the worker's metrics."""

    def __init__(
        self, consumer_factory: Callable[[int], Consumer], worker: int, metrics: ProxyMetrics
    ) -> None:
        try:
            pickle.dumps(consumer_factory)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise TypeError(
                f"pair_consumer {consumer_factory!r} must pickle (a module-level function or a "
                f"functools.partial of one): the mirror process is spawned ({error})"
            ) from error
        self.consumer_factory = consumer_factory  # pickled for the spawned process
        self.worker = worker
        self.metrics = metrics
        self.transport: asyncio.WriteTransport | None = None
        self.process: Any = None
        self.started = 0.0
        self.closing = False
        self.exited: asyncio.Future[None] | None = None
        self.sent: Counter[str] = Counter()  # pairs written to the current process, by route
        self.finished: Counter[str] = Counter()  # ... and the ones it reported done with
        self.known: set[int] = set()  # route keys the current process has been sent
        self.new_routes: dict[int, Mirrored] = {}
        self.forget = False  # the next message tells the mirror to forget the routes it has
        self.unsent: list[tuple[int, bytes]] = []
        self.held = 0  # bytes of `unsent`: not in the pipe's buffer yet, counted all the same
        self.restarting: asyncio.Task[None] | None = None  # held: a task nobody holds may vanish

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # never fork a running event loop
        child_reader, writer = context.Pipe(duplex=False)
        reader, child_writer = context.Pipe(duplex=False)
        self.process = context.Process(
            target=serve_mirror,
            args=(
                child_reader,
                child_writer,
                self.consumer_factory,
                self.worker,
            ),
            name="strangler-shadow-mirror",
            daemon=True,
        )
        self.process.start()
        child_reader.close()
        child_writer.close()
        self.started = time.monotonic()
        self.exited = loop.create_future()
        process = self.process
        self.transport = await pipe_writer(own_fd(writer), lambda: self._gone(process))
        await pipe_reader(own_fd(reader), FrameReader(self._report, lambda: self._ended(process)))
        self.flush()  # what was held while it started

    def offer(self, route: str, key: int, mirrored: Mirrored, data: bytes) -> bool:
        transport = self.transport
        if transport is None:  # being started again: held until it is, as many bytes as
            if self.closing or self.held + len(data) > MAX_UNSENT:  # a pipe may hold
                return False
        elif transport.get_write_buffer_size() + self.held > MAX_UNSENT:
            return False
        elif not self.unsent:
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
        self.held += len(data)
        if key not in self.known:
            self.known.add(key)
            self.new_routes[key] = mirrored
        self.unsent.append((key, data))
        self.sent[route] += 1
        return True

    def flush(self) -> None:
        if self.transport is None or not self.unsent:
            return  # held until a process started again is connected, or nothing to write
        unsent, self.unsent, self.held = self.unsent, [], 0
        routes, self.new_routes = self.new_routes, {}
        forget, self.forget = self.forget, False
        if not self.transport.is_closing():
            message = pickle.dumps((forget, routes, unsent), pickle.HIGHEST_PROTOCOL)
            self.transport.write(frame(message))

    def forget_routes(self) -> None:
        """The worker forgot its route keys: what it sent is written with the old ones, and
        the mirror forgets them before the next message, whose routes all have new keys."""
        self.flush()
        self.known.clear()
        self.forget = True

    def _report(self, message: bytes) -> None:
        counts: dict[tuple[str, str], int] = pickle.loads(message)
        shadow = self.metrics.shadow
        for (route, outcome), n in counts.items():
            if outcome == FINISHED:
                self.finished[route] += n
            else:
                shadow[(route, outcome)] += n

    def _ended(self, process: Any) -> None:
        """The process closed its end of the pipe: it exited, or was killed."""
        if process is self.process and self.exited is not None and not self.exited.done():
            self.exited.set_result(None)
        self._gone(process)

    def _gone(self, process: Any) -> None:
        """A pipe to `process` was closed or broke; unless we are closing, it died."""
        if process is not self.process or self.closing:
            return
        if self.transport is None:
            return  # told by its other pipe already
        transport, self.transport = self.transport, None
        transport.abort()
        lost = self.sent - self.finished  # Counter subtraction keeps the positive ones
        for route, n in lost.items():  # here: a count the next mirror kept would die with it
            self.metrics.shadow[(route, "lost")] += n
        self.sent, self.finished, self.known = Counter(), Counter(), set()
        self.unsent, self.new_routes, self.held = [], {}, 0  # never written: in `lost`
        log.warning("shadow mirror process (pid %s) is gone, %d pairs lost with it; "
                    "starting another", self.process.pid, lost.total())  # fmt: skip
        # One that dies at once is not started again in a tight loop.
        delay = max(0.0, 1.0 - (time.monotonic() - self.started))
        self.restarting = asyncio.get_running_loop().create_task(self._restart(delay))

    async def _restart(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.process.join(0)
        if not self.closing:
            try:
                await self.start()
            except Exception:
                log.exception("shadow mirror process not started again; shadowing is off")

    async def close(self, timeout: float = 15.0) -> None:
        """Send what is unsent, close the pipe, and let the process finish its calls and
        its consumer's queue (up to `timeout` s); then it is stopped."""
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()  # EOF to the mirror once the buffer is written
        if self.exited is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), timeout)
            except TimeoutError:
                log.error("shadow mirror process (pid %s) did not stop in %s s",
                          self.process.pid, timeout)  # fmt: skip
        if self.process is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.process.join, 1)
            if self.process.is_alive():
                self.process.kill()  # SIGKILL: a stopped (SIGSTOP) process ignores the rest
                await asyncio.get_running_loop().run_in_executor(None, self.process.join, 5)
        if self.exited is not None and not self.exited.done():
            with contextlib.suppress(TimeoutError):  # its last counts, read before its EOF
                await asyncio.wait_for(asyncio.shield(self.exited), 1)
        lost = self.sent - self.finished
        if lost:  # no /metrics outlives this: the log tells what stopping it cost
            log.error("shadow mirror process (pid %s) stopped with %d pairs not finished, lost "
                      "(%s)", self.process.pid if self.process else "-", lost.total(),
                      ", ".join(f"{route}: {n}" for route, n in sorted(lost.items())))  # fmt: skip


class Shadower:
    """Hands each shadowed exchange of one worker to its mirror process, or counts why not."""

    def __init__(self, metrics: ProxyMetrics, mirror: MirrorProcess) -> None:
        self.metrics = metrics
        self.mirror = mirror
        # Per shadow policy in force (the table's objects, held so an id is never reused):
        # its key for the mirror, and what the mirror needs of its route.
        self.keys: dict[int, tuple[ShadowPolicy, int, Mirrored | None]] = {}
        self.next_key = 0

    def count(self, route: Route, outcome: ShadowOutcome) -> None:
        self.metrics.shadow[(route.id, outcome)] += 1

    def _mirrored(
        self, route: Route, policy: ShadowPolicy, backends: dict[str, Backend]
    ) -> tuple[int, Mirrored | None]:
        known = self.keys.get(id(policy))
        if known is not None:
            return known[1], known[2]
        if len(self.keys) > 256:  # tables swapped many times: forget the old ones' policies
            self.keys.clear()
            self.mirror.forget_routes()
        candidate = backends.get(policy.candidate)
        mirrored = None
        if candidate is not None:
            secondary = backends.get(policy.secondary or route.monolith)
            mirrored = Mirrored(route.id, policy, candidate, secondary)
        self.next_key += 1
        self.keys[id(policy)] = (policy, self.next_key, mirrored)
        return self.next_key, mirrored

    def fire(self, ex: Exchange, capture: Capture, backend: Backend, latency: float) -> None:
        """The primary exchange is recorded: hand it to the mirror, or count why not."""
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
        key, mirrored = self._mirrored(route, policy, ex.client.state.compiled.table.backends)
        if mirrored is None:
            return
        body = b"".join(capture.request)
        if not body and not ex.chunked_in and capture.head.endswith(b"\r\n\r\n"):
            # The primary's own head, marked: the mark goes last, before the blank line.
            head = capture.head[:-2] + SHADOW_MARK + b"\r\n"
        else:
            drop = ex.dropped_headers()
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
        primary = reply_of(ex.status, ex.resp_headers, b"".join(capture.response), latency,
                           backend.url, size=capture.response_size)  # fmt: skip
        pair = {
            "route": route.id,
            "method": ex.method_str,
            "path": ex.target,  # bytes, like the headers: decoded by the consumer
            "at": time.time(),
            "request_headers": ex.headers,
            "request_body": body,
            "shadow_head": head,
            "primary": primary,
        }
        if not self.mirror.offer(route.id, key, mirrored, marshal.dumps(pair)):
            self.count(route, "dropped_hand_off")

    async def close(self) -> None:
        """Let the mirror finish: its calls in flight, then the ones waiting for a slot (two
        of the longest shadow timeout seen), and 5 s for its last comparisons."""
        longest = max((policy.timeout for policy, _, _ in self.keys.values()), default=0.0)
        await self.mirror.close(2 * longest + 5)
