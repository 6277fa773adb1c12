"""What one proxy process holds: the compiled table, pools, breakers, metrics, access log."""

from __future__ import annotations

import json
import logging
import sys
from typing import IO, Any

from strangler.control.model import Backend
from strangler.control.routing import CompiledTable
from strangler.control.store import Version
from strangler.proxy.breaker import STATES, CircuitBreaker
from strangler.proxy.headers import RequestIds
from strangler.proxy.metrics import ProxyMetrics
from strangler.proxy.shadow import Shadower
from strangler.proxy.upstream import Pool

log = logging.getLogger("strangler.proxy")


class AccessLog:
    """JSON lines, buffered and flushed by a timer so a request never waits on a write."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lines: list[str] = []

    def write(self, record: dict[str, Any]) -> None:
        self.lines.append(json.dumps(record, separators=(",", ":")))

    def flush(self) -> None:
        if self.lines:
            lines, self.lines = self.lines, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


def open_access_log(target: str) -> AccessLog | None:
    """'off' for none, '-' for stdout, else a file path (appended)."""
    if target == "off":
        return None
    if target == "-":
        return AccessLog(sys.stdout)
    return AccessLog(open(target, "a", encoding="utf-8"))


class ProxyState:
    """The one mutable place: swapped wholesale on a new table, read by every request."""

    def __init__(self, version: Version, access_log: AccessLog | None = None) -> None:
        self.metrics = ProxyMetrics()
        self.access_log = access_log
        self.request_ids = RequestIds()
        self.pools: dict[str, Pool] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.draining = False
        self.shadow: Shadower | None = None  # set by the runner when pairs have a consumer
        # Requests waiting for a response head; a sweep times them out, which is cheaper
        # than a timer handle per request.
        self.waiting: set[Any] = set()
        self.compiled: CompiledTable
        self.backend_header = b""
        self.max_header_bytes = self.max_body_bytes = self.max_connections = 0
        self.header_timeout = self.body_timeout = 0.0
        self.swap(version)

    def swap(self, version: Version) -> None:
        """Put a validated version in force; requests already routed keep their decision."""
        table = version.table
        for name, pool in list(self.pools.items()):
            if name not in table.backends or table.backends[name].url != pool.backend.url:
                pool.close()  # in-use connections are closed when released, not cut
                del self.pools[name]
        for name, backend in table.backends.items():
            if name in self.pools:
                self.pools[name].backend = backend  # new timeouts take effect at once
            breaker = self.breakers.get(name)
            args = (
                backend.breaker_failures,
                backend.breaker_error_rate,
                backend.breaker_window,
                backend.breaker_cooldown,
            )
            if breaker is None:
                self.breakers[name] = CircuitBreaker(*args)
            else:
                breaker.configure(*args)
        self.backend_header = table.settings.backend_header.encode()
        self.max_header_bytes = table.settings.max_header_bytes
        self.max_body_bytes = table.settings.max_body_bytes
        self.max_connections = table.settings.max_connections
        self.header_timeout = table.settings.client_header_timeout
        self.body_timeout = table.settings.client_body_timeout
        self.compiled = CompiledTable.build(table, version.number)
        self.metrics.config_version = version.number
        log.info("route table version %s in force (%s routes)", version.number, len(table.routes))

    def count_rejection(self) -> None:
        """A pushed table failed validation; the one in force keeps serving."""
        self.metrics.config_rejections += 1

    def pool(self, backend: Backend) -> Pool:
        pool = self.pools.get(backend.name)
        if pool is None:
            pool = self.pools[backend.name] = Pool(backend)
        return pool

    def sweep_timeouts(self, now: float) -> None:
        """Time out every request whose backend has not answered by its deadline."""
        overdue = [ex for ex in self.waiting if ex.deadline <= now]
        for ex in overdue:
            self.waiting.discard(ex)
            ex.on_timeout()

    def breaker_snapshot(self) -> None:
        """Copy breaker states into the metrics (done at scrape time, not per request)."""
        for name, breaker in self.breakers.items():
            self.metrics.breaker_state[(name,)] = STATES[breaker.state]
