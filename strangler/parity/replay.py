"""Replay recorded requests against primary, candidate (and secondary) and compare the answers.

Safe methods only, unless a sandbox is named: then writes go to the candidate alone (the
sandbox) and are compared with the answer recorded in the HAR, never sent to the primary.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from strangler.parity.compare import MAX_DECODED_BYTES, Comparer, Comparison
from strangler.parity.exchange import REDACTED, Exchange, Headers, Reply
from strangler.parity.har import SAFE_METHODS, HarRequest

SHADOW_HEADER = "X-Strangler-Shadow"  # marks a request whose answer no client will see
NOT_FORWARDED = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
     "upgrade", "proxy-connection", "accept-encoding", "trailer"}
)  # fmt: skip
MAX_BODY_BYTES = MAX_DECODED_BYTES  # an answer is read up to this (as sent); longer ones are cut


@dataclass(frozen=True)
class Targets:
    """Where a replay sends requests; `sandbox` (= the candidate) allows writes; `host`
    replaces the Host each request was recorded with."""

    primary: str
    candidate: str
    secondary: str = ""
    sandbox: str = ""
    host: str = ""


@dataclass
class ReplayResult:
    """What a replay did: entries, comparisons, what it skipped, dropped and saw fail."""

    entries: int = 0
    compared: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    redacted: Counter[str] = field(default_factory=Counter)  # header name -> requests
    failures: Counter[str] = field(default_factory=Counter)  # "candidate: error" -> count
    primary_statuses: Counter[int] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


class InOrder:
    """Hands entries' comparisons on in the file's order: entry n's once entries 0..n-1 are
    done. Those waiting are bounded by the answers that come in within one request's timeout."""

    def __init__(
        self,
        on_comparison: Callable[[Comparison], None],
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.on_comparison, self.progress, self.total = on_comparison, progress, total
        self.waiting: dict[int, Comparison | None] = {}
        self.done = 0

    def finished(self, n: int, comparison: Comparison | None) -> None:
        self.waiting[n] = comparison
        while self.done in self.waiting:
            ready = self.waiting.pop(self.done)
            self.done += 1
            if ready is not None:
                self.on_comparison(ready)
            if self.progress is not None:
                self.progress(self.done, self.total)


def forwarded(req: HarRequest, host: str, result: ReplayResult) -> Headers:
    """The headers a replayed request is sent with: hop-by-hop ones and HTTP/2 pseudo-headers
    (`:authority`, a browser's h2 export) dropped, the recorded (or given) Host kept, and
    `[redacted]` placeholders dropped and counted, never sent."""
    out = []
    for name, value in req.headers:
        if value == REDACTED:
            result.redacted[name] += 1
        elif name.lower() not in NOT_FORWARDED and not name.startswith(":"):
            out.append((name, value))
    if host or req.host:
        out.append(("Host", host or req.host))
    return tuple(out)


async def _send(
    client: httpx.AsyncClient,
    base: str,
    req: HarRequest,
    headers: Headers,
    marked: bool,
    timeout: float,
) -> Reply:
    """One side's answer; `timeout` bounds the whole exchange (a server dripping a byte now and
    then passes every per-read timeout), and the body is read up to MAX_BODY_BYTES."""
    # Latin-1, one byte per character, as the recorder read them (parse_har checked they are).
    sent = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if marked:
        sent.append((SHADOW_HEADER.encode(), b"replay"))
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                req.method, base + req.path, headers=sent, content=req.body or None
            ) as response:
                body, truncated = await _capped_body(response)
    except TimeoutError:
        return _no_answer(base, started, f"timeout after {timeout} s")
    except httpx.HTTPError as error:
        return _no_answer(base, started, f"{type(error).__name__}: {error}")
    return Reply(
        status=response.status_code,
        headers=tuple(response.headers.multi_items()),
        body=body,
        latency_ms=(time.perf_counter() - started) * 1000,
        base_url=base,
        truncated=truncated,
    )


async def _capped_body(response: httpx.Response) -> tuple[bytes, bool]:
    """The body as sent (its content coding undone by the comparison, which checks it is
    whole, as it does for shadowed pairs; httpx's decoder takes a gzip body cut short, or with
    bytes after its end, as complete) up to MAX_BODY_BYTES and whether there was more: an
    answer that never ends is cut, so it is not compared and never fills the memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks)[:MAX_BODY_BYTES], True
    return b"".join(chunks), False


def _no_answer(base: str, started: float, error: str) -> Reply:
    return Reply(0, latency_ms=(time.perf_counter() - started) * 1000, base_url=base,
                 error=error[:200])  # fmt: skip


async def replay(
    requests: Sequence[HarRequest],
    targets: Targets,
    comparer: Comparer,
    route: str,
    on_comparison: Callable[[Comparison], None],
    concurrency: int = 8,
    rate: float = 0.0,
    timeout: float = 10.0,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Replay `requests`, at most `concurrency` in flight and `rate` starts per second (0 = any).

    `on_comparison` and `progress` see the entries in the file's order, whatever order their
    answers came in: what they saw when a replay is stopped is a prefix of the file, so it
    can go on from the next entry without comparing any twice.
    """
    result = ReplayResult(entries=len(requests))
    gate = asyncio.Semaphore(max(1, concurrency))
    started = time.monotonic()
    in_order = InOrder(on_comparison, progress, len(requests))
    limits = httpx.Limits(max_connections=max(1, concurrency) * 3)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(n: int, req: HarRequest) -> None:
            async with gate:
                if rate > 0:
                    await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
                exchange = await _exchange(client, req, targets, route, result, timeout)
            comparison = None
            if exchange is not None:
                comparison = comparer.compare(exchange)
                if comparison.skipped is None:
                    result.compared += 1
                else:
                    result.skip(f"not compared ({comparison.skipped})")
            in_order.finished(n, comparison)

        await asyncio.gather(*(one(n, r) for n, r in enumerate(requests)))
    return result


async def _exchange(
    client: httpx.AsyncClient,
    req: HarRequest,
    targets: Targets,
    route: str,
    result: ReplayResult,
    timeout: float,
) -> Exchange | None:
    at = time.time()
    if req.method not in SAFE_METHODS:
        if not targets.sandbox:
            result.skip("write without --allow-writes")
            return None
        if req.recorded is None:
            result.skip("write without a recorded response")
            return None
        headers = forwarded(req, targets.host, result)
        candidate = await _send(client, targets.sandbox, req, headers, True, timeout)
        _failed(result, "candidate", candidate)
        return Exchange(route, req.method, req.path, req.recorded, candidate,
                        request_headers=req.headers, request_body=req.body, at=at)  # fmt: skip
    headers = forwarded(req, targets.host, result)
    primary, candidate, secondary = await asyncio.gather(
        _send(client, targets.primary, req, headers, False, timeout),
        _send(client, targets.candidate, req, headers, True, timeout),
        _send(client, targets.secondary or targets.primary, req, headers, True, timeout),
    )
    for side, reply in (("primary", primary), ("candidate", candidate), ("secondary", secondary)):
        _failed(result, side, reply)
    if primary.error:
        result.skip("primary did not answer")
        return None
    result.primary_statuses[primary.status] += 1
    return Exchange(route, req.method, req.path, primary, candidate, secondary,
                    request_headers=req.headers, request_body=req.body, at=at)  # fmt: skip


def _failed(result: ReplayResult, side: str, reply: Reply) -> None:
    if reply.error:
        result.failures[f"{side}: {reply.error}"] += 1
