"""The proxy's /metrics as data: one scrape's totals, the counts between two scrapes, summed.

Pure functions over plain dataclasses so the arithmetic (counter resets on a proxy restart,
replicas summed, quantiles from histogram buckets) is tested without any server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

RequestKey = tuple[str, str, str]  # route, backend, status
PairKey = tuple[str, str]  # route, backend  or  route, reason
K = TypeVar("K")


@dataclass(frozen=True)
class Scrape:
    """One replica's /metrics at one moment: counters as running totals, gauges as read."""

    requests: dict[RequestKey, float] = field(default_factory=dict)
    latency: dict[PairKey, tuple[float, ...]] = field(default_factory=dict)  # cumulative buckets
    bounds: tuple[float, ...] = ()  # the buckets' upper bounds, +Inf last
    fallbacks: dict[PairKey, float] = field(default_factory=dict)
    breakers: dict[str, int] = field(default_factory=dict)  # backend -> 0 closed, 1 half, 2 open
    config_version: int = 0
    store_healthy: bool = True  # False while the proxy cannot read its route store
    shadow: dict[PairKey, float] = field(default_factory=dict)  # route, outcome


@dataclass(frozen=True)
class Tick:
    """What happened between two scrapes (all replicas added up): counts, not totals."""

    at: float  # unix time of the newer scrape
    seconds: float  # how long the interval was
    requests: dict[RequestKey, float] = field(default_factory=dict)
    latency: dict[PairKey, tuple[float, ...]] = field(default_factory=dict)  # per-bucket counts
    fallbacks: dict[PairKey, float] = field(default_factory=dict)
    bounds: tuple[float, ...] = ()
    shadow: dict[PairKey, float] = field(default_factory=dict)  # route, outcome


SAMPLE = re.compile(r"(strangler_proxy_[a-z_]+)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+\S+)?")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_scrape(text: str) -> Scrape:
    """Read a strangler proxy's /metrics; ValueError saying why when the text is not that.

    Only the strangler_proxy_* samples are read, with a parser for exactly the Prometheus
    text the proxy writes (prometheus_client's general one takes several times longer, and
    this runs for every replica every second). Every count must be a finite number >= 0:
    a page fed NaN or negative counts by some other server would show nonsense.
    """
    requests: dict[RequestKey, float] = {}
    buckets: dict[PairKey, dict[float, float]] = {}
    fallbacks: dict[PairKey, float] = {}
    breakers: dict[str, int] = {}
    version: int | None = None
    store_healthy = True
    shadow: dict[PairKey, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("strangler_proxy_"):
            continue
        sample = SAMPLE.fullmatch(line)
        try:
            if sample is None:
                raise ValueError("not a sample line")
            name, labels, value = sample[1], _labels(sample[2] or ""), float(sample[3])
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} is {sample[3]}, not a count")
            match name:
                case "strangler_proxy_requests_total":
                    requests[(labels["route"], labels["backend"], labels["status"])] = value
                case "strangler_proxy_request_duration_seconds_bucket":
                    pair = (labels["route"], labels["backend"])
                    buckets.setdefault(pair, {})[float(labels["le"])] = value
                case "strangler_proxy_fallbacks_total":
                    fallbacks[(labels["route"], labels["reason"])] = value
                case "strangler_proxy_breaker_state":
                    breakers[labels["backend"]] = int(value)
                case "strangler_proxy_config_version":
                    version = int(value)
                case "strangler_proxy_shadow_total":
                    shadow[(labels["route"], labels["outcome"])] = value
                case "strangler_proxy_route_store_healthy":
                    store_healthy = value != 0
        except KeyError as missing:
            raise ValueError(
                f"not a strangler proxy's /metrics: line {number}: no {missing} label"
            ) from missing
        except ValueError as error:
            raise ValueError(f"not a strangler proxy's /metrics: line {number}: {error}") from error
    if version is None:
        raise ValueError("not a strangler proxy's /metrics (no strangler_proxy_config_version)")
    bounds = tuple(sorted({le for per in buckets.values() for le in per}))
    latency = {pair: tuple(per.get(le, 0.0) for le in bounds) for pair, per in buckets.items()}
    return Scrape(requests, latency, bounds, fallbacks, breakers, version, store_healthy, shadow)


def _labels(text: str) -> dict[str, str]:
    found = LABEL.findall(text)
    if sum(len(n) + len(v) + 4 for n, v in found) < len(text.rstrip(",")):
        raise ValueError(f"bad labels {{{text[:60]}}}")
    return {name: re.sub(r'\\[\\"n]', lambda m: UNESCAPE[m[0]], value) for name, value in found}


def _growth(before: Mapping[K, float], after: Mapping[K, float]) -> dict[K, float]:
    """Each counter's growth; a smaller value means the process restarted and counts from 0."""
    grown = {key: value - before.get(key, 0.0) for key, value in after.items()}
    return {key: (g if g >= 0 else after[key]) for key, g in grown.items() if g}


def difference(before: Scrape, after: Scrape, at: float, seconds: float) -> Tick:
    """The counts between two scrapes of one replica, counter resets included."""
    latency: dict[PairKey, tuple[float, ...]] = {}
    # No bounds before = no histogram yet (no request so far): everything since is new.
    if before.bounds in ((), after.bounds):
        for pair, cumulative in after.latency.items():
            old = before.latency.get(pair, (0.0,) * len(cumulative))
            if any(b > a for b, a in zip(old, cumulative, strict=True)):
                old = (0.0,) * len(cumulative)  # restarted: everything since is new
            latency[pair] = _per_bucket([a - b for a, b in zip(cumulative, old, strict=True)])
    return Tick(
        at,
        seconds,
        _growth(before.requests, after.requests),
        {pair: counts for pair, counts in latency.items() if any(counts)},
        _growth(before.fallbacks, after.fallbacks),
        after.bounds,
        _growth(before.shadow, after.shadow),
    )


def _per_bucket(cumulative: list[float]) -> tuple[float, ...]:
    return tuple(c - p for c, p in zip(cumulative, [0.0, *cumulative[:-1]], strict=True))


def add_ticks(ticks: Iterable[Tick], at: float, seconds: float) -> Tick:
    """Several replicas' ticks over the same interval as one (counts summed)."""
    requests: dict[RequestKey, float] = {}
    latency: dict[PairKey, tuple[float, ...]] = {}
    fallbacks: dict[PairKey, float] = {}
    shadow: dict[PairKey, float] = {}
    bounds: tuple[float, ...] = ()
    for tick in ticks:
        _add_into(requests, tick.requests)
        _add_into(fallbacks, tick.fallbacks)
        _add_into(shadow, tick.shadow)
        bounds = bounds or tick.bounds
        # A replica with other buckets (another version) counts in requests, not in latency.
        for pair, counts in tick.latency.items() if tick.bounds == bounds else ():
            old = latency.get(pair)
            latency[pair] = (
                counts if old is None else tuple(a + b for a, b in zip(old, counts, strict=True))
            )
    return Tick(at, seconds, requests, latency, fallbacks, bounds, shadow)


def _add_into(total: dict[K, float], more: Mapping[K, float]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value


def quantile(q: float, bounds: tuple[float, ...], counts: Iterable[float]) -> float | None:
    """The q-quantile of a bucketed distribution, interpolated inside its bucket.

    The same estimate as Prometheus' histogram_quantile(); None without observations. In the
    +Inf bucket the answer is the largest finite bound (nothing better is known).
    """
    counts = list(counts)
    total = sum(counts)
    if not total or len(counts) != len(bounds):
        return None
    rank = q * total
    seen = 0.0
    for index, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count and seen + count >= rank:
            if math.isinf(bound):
                return bounds[index - 1] if index else None
            lower = bounds[index - 1] if index else 0.0
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
    return bounds[-2] if len(bounds) > 1 else None
