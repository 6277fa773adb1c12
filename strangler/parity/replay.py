"""Replay recorded requests against primary, candidate (and secondary) and compare the answers.

Safe methods only, unless a sandbox is named: then writes go to the candidate alone (the
sandbox) and are compared with the answer recorded in the HAR, never sent to the primary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from strangler.parity.compare import Comparer, Comparison
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.har import SAFE_METHODS, HarRequest

SHADOW_HEADER = "X-Strangler-Shadow"  # marks a request whose answer no client will see
NOT_FORWARDED = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
     "upgrade", "proxy-connection", "accept-encoding", "trailer"}
)  # fmt: skip


@dataclass(frozen=True)
class Targets:
    """Where a replay sends requests; `sandbox` (= the candidate) allows writes."""

    primary: str
    candidate: str
    secondary: str = ""
    sandbox: str = ""


@dataclass
class ReplayResult:
    entries: int = 0
    compared: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


async def _send(client: httpx.AsyncClient, base: str, req: HarRequest, marked: bool) -> Reply:
    headers = [(k, v) for k, v in req.headers if k.lower() not in NOT_FORWARDED]
    if marked:
        headers.append((SHADOW_HEADER, "replay"))
    started = time.perf_counter()
    try:
        response = await client.request(
            req.method, base + req.path, headers=headers, content=req.body or None
        )
    except httpx.HTTPError as error:
        return Reply(0, latency_ms=(time.perf_counter() - started) * 1000, base_url=base,
                     error=f"{type(error).__name__}: {error}"[:200])  # fmt: skip
    return Reply(
        status=response.status_code,
        headers=tuple(response.headers.multi_items()),
        body=response.content,
        latency_ms=(time.perf_counter() - started) * 1000,
        base_url=base,
    )


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
    """Replay `requests`, at most `concurrency` in flight and `rate` starts per second (0 = any)."""
    result = ReplayResult(entries=len(requests))
    gate = asyncio.Semaphore(max(1, concurrency))
    started = time.monotonic()
    done = 0
    limits = httpx.Limits(max_connections=max(1, concurrency) * 3)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(n: int, req: HarRequest) -> None:
            nonlocal done
            async with gate:
                if rate > 0:
                    await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
                exchange = await _exchange(client, req, targets, route, result)
            if exchange is not None:
                on_comparison(comparer.compare(exchange))
                result.compared += 1
            done += 1
            if progress is not None:
                progress(done, len(requests))

        await asyncio.gather(*(one(n, r) for n, r in enumerate(requests)))
    return result


async def _exchange(
    client: httpx.AsyncClient, req: HarRequest, targets: Targets, route: str, result: ReplayResult
) -> Exchange | None:
    at = time.time()
    if req.method not in SAFE_METHODS:
        if not targets.sandbox:
            result.skip("write without --allow-writes")
            return None
        if req.recorded is None:
            result.skip("write without a recorded response")
            return None
        candidate = await _send(client, targets.sandbox, req, marked=True)
        return Exchange(route, req.method, req.path, req.recorded, candidate,
                        request_headers=req.headers, request_body=req.body, at=at)  # fmt: skip
    primary, candidate, secondary = await asyncio.gather(
        _send(client, targets.primary, req, marked=False),
        _send(client, targets.candidate, req, marked=True),
        _send(client, targets.secondary or targets.primary, req, marked=True),
    )
    if primary.error:
        result.skip("primary did not answer")
        return None
    return Exchange(route, req.method, req.path, primary, candidate, secondary,
                    request_headers=req.headers, request_body=req.body, at=at)  # fmt: skip
