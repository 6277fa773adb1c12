"""The proxy's metrics as gate readings: parse, subtract a baseline, sum replicas, quantiles.

Pure functions over the Prometheus text exposition (parsed by prometheus_client's parser) and
over the same figures as a Prometheus server returns them, so both sources feed one code path.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from strangler.runbook.gates import Traffic

REQUESTS = "strangler_proxy_requests_total"
LATENCY = "strangler_proxy_request_duration_seconds"
FALLBACKS = "strangler_proxy_fallbacks_total"
BREAKER = "strangler_proxy_breaker_state"
VERSION = "strangler_proxy_config_version"
STARTED = "process_start_time_seconds"  # the proxy's own, next to its figures
BREAKER_STATES = (0.0, 1.0, 2.0)  # closed, half-open, open
COUNTS = (REQUESTS, f"{LATENCY}_bucket", FALLBACKS)  # never negative on a strangler proxy


@dataclass(frozen=True)
class Scrape:
    """The proxy figures gates read; counters are cumulative or, after `delta`, per window."""

    requests: dict[tuple[str, str, str], float] = field(
        default_factory=dict
    )  # route, backend, status
    buckets: dict[tuple[str, str, float], float] = field(default_factory=dict)  # route, backend, le
    fallbacks: dict[str, float] = field(default_factory=dict)  # route
    breaker: dict[str, float] = field(default_factory=dict)  # backend
    config_version: float | None = None  # route table version in force (oldest replica's)
    started: float | None = None  # one replica's process start (unix time), None if unknown

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": [[*k, v] for k, v in sorted(self.requests.items())],
            "buckets": [[r, b, _le_text(le), v] for (r, b, le), v in sorted(self.buckets.items())],
            "fallbacks": dict(sorted(self.fallbacks.items())),
            "breaker": dict(sorted(self.breaker.items())),
            "config_version": self.config_version,
            "started": self.started,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scrape:
        return cls(
            requests={(r, b, s): float(v) for r, b, s, v in data["requests"]},
            buckets={(r, b, float(le)): float(v) for r, b, le, v in data["buckets"]},
            fallbacks={k: float(v) for k, v in data["fallbacks"].items()},
            breaker={k: float(v) for k, v in data["breaker"].items()},
            config_version=data.get("config_version"),
            started=data.get("started"),
        )


def _le_text(le: float) -> str:
    return "+Inf" if math.isinf(le) else repr(le)


def parse(text: str) -> Scrape:
    """A /metrics page (Prometheus text format) as a Scrape; ValueError if it is not one (a
    count that is negative or NaN is no strangler proxy's)."""
    requests: dict[tuple[str, str, str], float] = defaultdict(float)
    buckets: dict[tuple[str, str, float], float] = defaultdict(float)
    fallbacks: dict[str, float] = defaultdict(float)
    breaker: dict[str, list[float]] = defaultdict(list)
    version: float | None = None
    started: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name in COUNTS and not sample.value >= 0:  # NaN too
                raise ValueError(f"{sample.name}{labels} {sample.value}: not a count")
            if sample.name == REQUESTS:
                requests[(labels["route"], labels["backend"], labels["status"])] += sample.value
            elif sample.name == LATENCY + "_bucket":
                key = (labels["route"], labels["backend"], float(labels["le"]))
                buckets[key] += sample.value
            elif sample.name == FALLBACKS:
                fallbacks[labels["route"]] += sample.value
            elif sample.name == BREAKER:
                breaker[labels["backend"]].append(sample.value)
            elif sample.name == VERSION:
                version = sample.value
            elif sample.name == STARTED:
                started = sample.value
    return Scrape(dict(requests), dict(buckets), dict(fallbacks), _worst(breaker), version, started)


def _worst(breakers: dict[str, list[float]]) -> dict[str, float]:
    """Each backend's worst breaker state; NaN (no reading) when one is not a state at all."""
    return {
        backend: max(states) if all(s in BREAKER_STATES for s in states) else math.nan
        for backend, states in breakers.items()
    }


def delta(now: Scrape, base: Scrape | None) -> Scrape:
    """What happened since `base` on one replica; a new process start time, or a counter
    that went down, means it restarted, and then its figures count from zero (like
    Prometheus' increase())."""
    if base is None:
        return now
    restarted = (
        (now.started is not None and base.started is not None and now.started != base.started)
        or any(v < base.requests.get(k, 0) for k, v in now.requests.items())
        or any(v < base.buckets.get(k, 0) for k, v in now.buckets.items())
        or any(v < base.fallbacks.get(k, 0) for k, v in now.fallbacks.items())
    )
    if restarted:
        return now
    return Scrape(
        {k: v - base.requests.get(k, 0) for k, v in now.requests.items()},
        {k: v - base.buckets.get(k, 0) for k, v in now.buckets.items()},
        {k: v - base.fallbacks.get(k, 0) for k, v in now.fallbacks.items()},
        dict(now.breaker),
        now.config_version,
        now.started,
    )


def combine(scrapes: Iterable[Scrape]) -> Scrape:
    """Several replicas as one: counters summed, a breaker in its worst state."""
    requests: dict[tuple[str, str, str], float] = defaultdict(float)
    buckets: dict[tuple[str, str, float], float] = defaultdict(float)
    fallbacks: dict[str, float] = defaultdict(float)
    breaker: dict[str, list[float]] = defaultdict(list)
    versions: list[float] = []
    for scrape in scrapes:
        if scrape.config_version is not None:
            versions.append(scrape.config_version)
        for key, value in scrape.requests.items():
            requests[key] += value
        for bkey, value in scrape.buckets.items():
            buckets[bkey] += value
        for route, value in scrape.fallbacks.items():
            fallbacks[route] += value
        for backend, state in scrape.breaker.items():
            breaker[backend].append(state)
    return Scrape(
        dict(requests),
        dict(buckets),
        dict(fallbacks),
        _worst(breaker),
        min(versions) if versions else None,
    )


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets; None when empty."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the highest finite bound, as Prometheus answers
            width = count - lower_count
            return (
                bound
                if width <= 0
                else (lower_bound + (bound - lower_bound) * (rank - lower_count) / width)
            )
        lower_bound, lower_count = bound, count
    return None


def traffic(
    scrape: Scrape, route: str, backend: str, quantile: float = 0.99, fallbacks_count: int = 0
) -> Traffic:
    """One backend's requests, 5xx answers and latency quantile on a route; None when the
    scrape has no series for the pair at all.

    fallbacks_count is +1 for the service (its failures answered by the monolith count as its
    requests and errors), -1 for the monolith (those answers were not its own traffic), 0 else.
    """
    statuses = {s: v for (r, b, s), v in scrape.requests.items() if r == route and b == backend}
    fallen = scrape.fallbacks.get(route, 0.0) * fallbacks_count
    if not statuses and not fallen:
        return Traffic(None, None, None)
    requests = sum(statuses.values()) + fallen
    errors = sum(v for s, v in statuses.items() if s.startswith("5")) + max(fallen, 0.0)
    bucket_list = [
        (le, v) for (r, b, le), v in scrape.buckets.items() if r == route and b == backend
    ]
    return Traffic(max(requests, 0.0), errors, histogram_quantile(quantile, bucket_list))
