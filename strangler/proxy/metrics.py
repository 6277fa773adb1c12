"""Counters and histograms kept in plain dicts and rendered in Prometheus text format.

prometheus_client's labelled metrics take a lock per update; the proxy updates a handful
per request, so it keeps its own lock-free numbers (one event loop per process) and only
formats them when /metrics is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import Any

from strangler.control.model import ROUTE_STATES, RouteTable, weight_number

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025)


_STATUS = {code: str(code) for code in range(100, 600)}  # label text without str() per request


class Histogram:
    """Cumulative-on-render histogram over fixed buckets."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ProxyMetrics:
    """Everything /metrics shows; updated from the event loop thread only."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.overhead: dict[tuple[str], Histogram] = {}
        self.fallbacks: dict[tuple[str, str], int] = defaultdict(int)
        self.retries: dict[tuple[str], int] = defaultdict(int)
        self.upstream_errors: dict[tuple[str, str], int] = defaultdict(int)
        self.rejected: dict[tuple[str], int] = defaultdict(int)
        self.client_timeouts: dict[tuple[str], int] = defaultdict(int)
        self.refused_connections: dict[tuple[()], int] = defaultdict(int)
        self.shadow: dict[tuple[str, str], int] = defaultdict(int)
        self.breaker_state: dict[tuple[str], int] = {}
        self.config_version = 0
        self.config_rejections = 0
        self.in_flight = 0
        self.worker_restarts = 0  # filled in from the supervisor's count when scraped
        self.store_healthy = 1  # 0 while the store's newest table cannot be read or is invalid
        self._children: dict[tuple[str, str], tuple[Histogram, Histogram]] = {}

    COUNTERS = (
        "requests",
        "fallbacks",
        "retries",
        "upstream_errors",
        "rejected",
        "client_timeouts",
        "refused_connections",
        "shadow",
    )
    HISTOGRAMS = ("latency", "overhead")

    def snapshot(self) -> dict[str, Any]:
        """The numbers as JSON-ready data, so workers can hand them to the one serving /metrics."""
        data: dict[str, Any] = {
            name: [[*k, v] for k, v in getattr(self, name).items()] for name in self.COUNTERS
        }
        for name in self.HISTOGRAMS:
            data[name] = [[list(k), h.counts, h.sum] for k, h in getattr(self, name).items()]
        data["breaker_state"] = [[*k, v] for k, v in self.breaker_state.items()]
        data["scalars"] = [self.config_version, self.config_rejections, self.in_flight]
        return data

    def absorb(self, data: dict[str, Any]) -> None:
        """Add another worker's snapshot: counters and histograms sum, breakers take the worst."""
        self.absorb_counts(data)
        for backend, state in data["breaker_state"]:
            self.breaker_state[(backend,)] = max(self.breaker_state.get((backend,), 0), state)
        version, rejections, in_flight = data["scalars"]
        self.config_version = min(self.config_version, version) if self.config_version else version
        self.config_rejections += rejections
        self.in_flight += in_flight

    def absorb_counts(self, data: dict[str, Any]) -> None:
        """Add a snapshot's counters and histograms only: a worker started again goes on from
        its predecessor's counts (the gauges are its own)."""
        for name in self.COUNTERS:
            target = getattr(self, name)
            for *key, value in data[name]:
                target[tuple(key)] += value
        for name in self.HISTOGRAMS:
            target = getattr(self, name)
            bounds = LATENCY_BUCKETS if name == "latency" else OVERHEAD_BUCKETS
            for key, counts, total in data[name]:
                hist = target.setdefault(tuple(key), Histogram(bounds))
                hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
                hist.sum += total

    def observe(
        self, route: str, backend: str, status: int, duration: float, overhead: float
    ) -> None:
        key = (route, backend)
        hists = self._children.get(key)
        if hists is None:
            hists = self._children[key] = self._bind(route, backend)
        latency, own = hists
        self.requests[(route, backend, _STATUS.get(status) or str(status))] += 1
        latency.counts[bisect_left(latency.bounds, duration)] += 1
        latency.sum += duration
        own.counts[bisect_left(own.bounds, overhead)] += 1
        own.sum += overhead

    def _bind(self, route: str, backend: str) -> tuple[Histogram, Histogram]:
        """The two histograms a (route, backend) pair updates, looked up once."""
        latency = self.latency.get((route, backend))
        if latency is None:
            latency = self.latency[(route, backend)] = Histogram(LATENCY_BUCKETS)
        own = self.overhead.get((route,))
        if own is None:
            own = self.overhead[(route,)] = Histogram(OVERHEAD_BUCKETS)
        return latency, own

    def render(self) -> str:
        out: list[str] = []

        def counter(name: str, help_: str, labels: tuple[str, ...], data: dict) -> None:
            out.extend([f"# HELP {name} {help_}", f"# TYPE {name} counter"])
            out.extend(f"{name}{_labels(labels, k)} {v}" for k, v in sorted(data.items()))

        def histogram(name: str, help_: str, labels: tuple[str, ...], data: dict) -> None:
            out.extend([f"# HELP {name} {help_}", f"# TYPE {name} histogram"])
            for key, hist in sorted(data.items()):
                running = 0
                for bound, count in zip((*hist.bounds, "+Inf"), hist.counts, strict=True):
                    running += count
                    le = 'le="' + str(bound) + '"'
                    out.append(f"{name}_bucket{_labels(labels, key, le)} {running}")
                out.append(f"{name}_sum{_labels(labels, key)} {hist.sum}")
                out.append(f"{name}_count{_labels(labels, key)} {running}")

        def gauge(name: str, help_: str, labels: tuple[str, ...], data: dict) -> None:
            out.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge"])
            out.extend(f"{name}{_labels(labels, k)} {v}" for k, v in sorted(data.items()))

        counter(
            "strangler_proxy_requests_total",
            "Requests answered, by route, backend, status.",
            ("route", "backend", "status"),
            self.requests,
        )
        histogram(
            "strangler_proxy_request_duration_seconds",
            "Time from request headers to the last response byte.",
            ("route", "backend"),
            self.latency,
        )
        histogram(
            "strangler_proxy_overhead_seconds",
            "The proxy's own time per request (not waiting on the backend).",
            ("route",),
            self.overhead,
        )
        counter(
            "strangler_proxy_fallbacks_total",
            "Requests sent to the monolith because the service failed or its breaker was open.",
            ("route", "reason"),
            self.fallbacks,
        )
        counter(
            "strangler_proxy_retries_total",
            "Retries after a connection failure.",
            ("backend",),
            self.retries,
        )
        counter(
            "strangler_proxy_upstream_errors_total",
            "Failed attempts, by backend and reason.",
            ("backend", "reason"),
            self.upstream_errors,
        )
        counter(
            "strangler_proxy_rejected_requests_total",
            "Requests refused by the proxy itself (400, 408, 413, 431, 501).",
            ("status",),
            self.rejected,
        )
        counter(
            "strangler_proxy_client_timeouts_total",
            "Clients too slow: a request's header section or body (answered 408), or taking"
            " nothing of an answer (closed).",
            ("phase",),
            self.client_timeouts,
        )
        counter(
            "strangler_proxy_refused_connections_total",
            "Connections answered 503 because the worker was at settings.max_connections.",
            (),
            {(): self.refused_connections[()]},
        )
        counter(
            "strangler_proxy_shadow_total",
            "Shadowed requests, by route and outcome (sent, dropped_in_flight, "
            "dropped_hand_off, body_too_large, response_too_large, request_incomplete, "
            "candidate_failed, secondary_failed, lost: held by a mirror process that died).",
            ("route", "outcome"),
            self.shadow,
        )
        gauge(
            "strangler_proxy_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            ("backend",),
            self.breaker_state,
        )
        gauge(
            "strangler_proxy_config_version",
            "Route table version in force.",
            (),
            {(): self.config_version},
        )
        counter(
            "strangler_proxy_config_rejections_total",
            "Route tables rejected by validation while running.",
            (),
            {(): self.config_rejections},
        )
        gauge(
            "strangler_proxy_in_flight_requests",
            "Requests being proxied now.",
            (),
            {(): self.in_flight},
        )
        counter(
            "strangler_proxy_worker_restarts_total",
            "Workers the --workers supervisor started again after they died.",
            (),
            {(): self.worker_restarts},
        )
        gauge(
            "strangler_proxy_route_store_healthy",
            "1 while the store's newest table is the one in force, 0 while it cannot be read.",
            (),
            {(): self.store_healthy},
        )
        return "\n".join(out) + "\n"


def route_gauges(table: RouteTable) -> str:
    """Each route's weight and state in the table in force, for dashboards and rollout gates.

    `strangler_route_state` has one series per state, 1 for the route's current one, so
    `strangler_route_state{state="retired"} == 1` selects retired routes.
    """
    out = [
        "# HELP strangler_route_weight Percent of the route's traffic sent to its service.",
        "# TYPE strangler_route_weight gauge",
    ]
    out.extend(
        f"strangler_route_weight{_labels(('route',), (r.id,))} {weight_number(r.weight)}"
        for r in table.routes
    )
    out += [
        "# HELP strangler_route_state The route's state: 1 for the current one, 0 for the others.",
        "# TYPE strangler_route_state gauge",
    ]
    for route in table.routes:
        for state in ROUTE_STATES:
            labels = _labels(("route", "state"), (route.id, state))
            out.append(f"strangler_route_state{labels} {int(route.state == state)}")
    return "\n".join(out) + "\n"
