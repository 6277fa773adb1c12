"""Per-route traffic over recent ticks: the live split, error rates, latency, small time series.

The collector folds its one-second ticks into one tick per SERIES_STEP_S of wall-clock time
as they arrive (`fold`); a page state puts those into bins ending now (`index`), and every
figure is read from the bins: the live split from the last 10 s of them, errors and latency
the last 60 s, the charts all of them. Pure functions, tested without a proxy. Errors are
5xx answers (the proxy's own 502/504 for a backend count as that backend's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from strangler.dashboard.metrics import Tick, add_ticks, quantile

SERIES_STEP_S = 5.0
SERIES_BINS = 60  # five minutes of charts
SPLIT_BINS = 2  # the live split: last 10-15 s, recent enough to see a flip within seconds
STATS_BINS = 12  # error rate and latency: last 60 s, enough requests to mean something


@dataclass
class Bins:
    """One (route, backend)'s counts per bin, oldest first."""

    requests: list[float] = field(default_factory=lambda: [0.0] * SERIES_BINS)
    errors: list[float] = field(default_factory=lambda: [0.0] * SERIES_BINS)
    latency: list[list[float] | None] = field(default_factory=lambda: [None] * SERIES_BINS)


@dataclass(frozen=True)
class BackendStats:
    """One backend of one route over the recent windows."""

    backend: str
    rps: float
    share: float | None  # of the route's requests in the split window, 0-1
    requests: int  # in the stats window
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Traffic:
    """Every route's counts in bins ending now; read with the functions below."""

    now: float
    bins: dict[tuple[str, str], Bins]
    fallbacks: dict[str, dict[str, int]]  # route -> reason -> count in the stats window
    shadow: dict[str, dict[str, int]]  # route -> outcome -> count in the stats window
    bounds: tuple[float, ...]
    covered_s: float  # seconds the split window's ticks cover (periods make it 10-15 s)


def fold(periods: deque[Tick], tick: Tick) -> None:
    """Add a tick to the newest period when it falls in the same SERIES_STEP_S, else append.

    So a page state reads at most SERIES_BINS + 1 ticks however often the proxies are scraped.
    """
    last = periods[-1] if periods else None
    if last is not None and int(last.at // SERIES_STEP_S) == int(tick.at // SERIES_STEP_S):
        periods[-1] = add_ticks([last, tick], tick.at, last.seconds + tick.seconds)
    else:
        periods.append(tick)


def index(ticks: Sequence[Tick], now: float) -> Traffic:
    """Put every tick within the last SERIES_BINS bins into its bin."""
    start = now - SERIES_STEP_S * SERIES_BINS
    bins: dict[tuple[str, str], Bins] = {}
    fallbacks: dict[str, dict[str, int]] = {}
    shadow: dict[str, dict[str, int]] = {}
    bounds: tuple[float, ...] = ()
    covered = 0.0
    for tick in ticks:
        if not start < tick.at <= now:
            continue
        slot = min(SERIES_BINS - 1, int((tick.at - start) / SERIES_STEP_S))
        if slot >= SERIES_BINS - SPLIT_BINS:
            covered += tick.seconds
        for (route, backend, status), count in tick.requests.items():
            entry = bins.get((route, backend)) or bins.setdefault((route, backend), Bins())
            entry.requests[slot] += count
            if status.startswith("5"):
                entry.errors[slot] += count
        bounds = bounds or tick.bounds
        for pair, counts in tick.latency.items() if tick.bounds == bounds else ():
            entry = bins.get(pair) or bins.setdefault(pair, Bins())
            old = entry.latency[slot]
            entry.latency[slot] = (
                list(counts) if old is None else [a + b for a, b in zip(old, counts, strict=True)]
            )
        if slot >= SERIES_BINS - STATS_BINS:
            _by_route(fallbacks, tick.fallbacks)
            _by_route(shadow, tick.shadow)
    split_s = SERIES_STEP_S * SPLIT_BINS
    return Traffic(now, bins, fallbacks, shadow, bounds, covered or split_s)


def _by_route(total: dict[str, dict[str, int]], counts: dict[tuple[str, str], float]) -> None:
    """Add (route, reason) counts into route -> reason -> count."""
    for (route, reason), count in counts.items():
        per_route = total.setdefault(route, {})
        per_route[reason] = per_route.get(reason, 0) + int(count)


def _quantile_ms(bounds: tuple[float, ...], counts: list[float], q: float) -> float | None:
    value = quantile(q, bounds, counts) if counts else None
    return None if value is None else round(value * 1000, 2)


def _latency_ms(traffic: Traffic, entry: Bins, first: int, q: float) -> float | None:
    """The q-quantile over the bins from `first` on, in milliseconds."""
    counts: list[float] = []
    for found in entry.latency[first:]:
        if found is not None:
            counts = [a + b for a, b in zip(counts or [0.0] * len(found), found, strict=True)]
    return _quantile_ms(traffic.bounds, counts, q)


def backend_stats(traffic: Traffic, route: str, backends: Sequence[str]) -> list[BackendStats]:
    """The split, error rate and p50/p99 of each of a route's backends."""
    split_from, stats_from = SERIES_BINS - SPLIT_BINS, SERIES_BINS - STATS_BINS
    entries = [traffic.bins.get((route, b), Bins()) for b in backends]
    recent = [sum(e.requests[split_from:]) for e in entries]
    all_recent = sum(recent)
    result = []
    for backend, entry, count in zip(backends, entries, recent, strict=True):
        total, errors = sum(entry.requests[stats_from:]), sum(entry.errors[stats_from:])
        result.append(
            BackendStats(
                backend,
                round(count / traffic.covered_s, 2),
                count / all_recent if all_recent else None,
                int(total),
                int(errors),
                errors / total if total else None,
                _latency_ms(traffic, entry, stats_from, 0.5),
                _latency_ms(traffic, entry, stats_from, 0.99),
            )
        )
    return result


def series(traffic: Traffic, route: str, backends: Sequence[str]) -> dict[str, object]:
    """Requests/s, error share and p99 per backend for each bin, for the charts.

    `t` is each bin's end in seconds before now (negative); a bin without requests has
    None for error share and p99 (a gap in the chart, not a zero).
    """
    out: dict[str, object] = {
        "t": [round(SERIES_STEP_S * (i + 1 - SERIES_BINS)) for i in range(SERIES_BINS)],
        "step_s": SERIES_STEP_S,
    }
    for backend in backends:
        entry = traffic.bins.get((route, backend), Bins())
        out[backend] = {
            "rps": [round(n / SERIES_STEP_S, 2) for n in entry.requests],
            "error_rate": [
                e / n if n else None for n, e in zip(entry.requests, entry.errors, strict=True)
            ],
            "p99_ms": [_quantile_ms(traffic.bounds, c or [], 0.99) for c in entry.latency],
        }
    return out
