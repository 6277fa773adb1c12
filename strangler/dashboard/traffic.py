"""Per-route traffic over recent ticks: the live split, error rates, latency, small time series.

Pure functions of the ticks the collector kept, so what the page shows is tested without a
proxy. Errors are 5xx answers (the proxy's own 502/504 for a backend count as that backend's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strangler.dashboard.metrics import Tick, quantile

SPLIT_WINDOW_S = 10.0  # the live split: recent enough to see a flip within seconds
STATS_WINDOW_S = 60.0  # error rate and latency need more requests to mean something
SERIES_SPAN_S = 300.0
SERIES_STEP_S = 5.0


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


def _within(ticks: Sequence[Tick], now: float, window: float) -> list[Tick]:
    return [t for t in ticks if now - window < t.at <= now]


def _covered(ticks: Sequence[Tick], window: float) -> float:
    """Seconds the ticks cover (less than the window just after the dashboard started)."""
    return min(window, sum(t.seconds for t in ticks)) or window


def _counts(ticks: Sequence[Tick], route: str, backend: str) -> tuple[int, int]:
    total = errors = 0.0
    for tick in ticks:
        for (r, b, status), value in tick.requests.items():
            if r == route and b == backend:
                total += value
                errors += value if status.startswith("5") else 0
    return int(total), int(errors)


def _latency_ms(ticks: Sequence[Tick], route: str, backend: str, q: float) -> float | None:
    bounds: tuple[float, ...] = ()
    counts: list[float] = []
    for tick in ticks:
        found = tick.latency.get((route, backend))
        if found is None or (bounds and tick.bounds != bounds):
            continue
        bounds = tick.bounds
        counts = [a + b for a, b in zip(counts or [0.0] * len(found), found, strict=True)]
    value = quantile(q, bounds, counts) if counts else None
    return None if value is None else round(value * 1000, 2)


def backend_stats(
    ticks: Sequence[Tick], route: str, backends: Sequence[str], now: float
) -> list[BackendStats]:
    """The split, error rate and p50/p99 of each of a route's backends."""
    split = _within(ticks, now, SPLIT_WINDOW_S)
    stats = _within(ticks, now, STATS_WINDOW_S)
    seconds = _covered(split, SPLIT_WINDOW_S)
    recent = {b: _counts(split, route, b)[0] for b in backends}
    all_recent = sum(recent.values())
    result = []
    for backend in backends:
        total, errors = _counts(stats, route, backend)
        result.append(
            BackendStats(
                backend,
                round(recent[backend] / seconds, 2),
                recent[backend] / all_recent if all_recent else None,
                total,
                errors,
                errors / total if total else None,
                _latency_ms(stats, route, backend, 0.5),
                _latency_ms(stats, route, backend, 0.99),
            )
        )
    return result


def fallbacks(ticks: Sequence[Tick], route: str, now: float) -> dict[str, int]:
    """Requests sent back to the monolith in the stats window, by reason."""
    counts: dict[str, int] = {}
    for tick in _within(ticks, now, STATS_WINDOW_S):
        for (r, reason), value in tick.fallbacks.items():
            if r == route:
                counts[reason] = counts.get(reason, 0) + int(value)
    return counts


def series(
    ticks: Sequence[Tick], route: str, backends: Sequence[str], now: float
) -> dict[str, object]:
    """Requests/s, error share and p99 per backend in SERIES_STEP_S bins over SERIES_SPAN_S.

    `t` is each bin's end in seconds before now (negative); a bin without requests has
    None for error share and p99 (a gap in the chart, not a zero).
    """
    bins = int(SERIES_SPAN_S / SERIES_STEP_S)
    ends = [now - SERIES_SPAN_S + (i + 1) * SERIES_STEP_S for i in range(bins)]
    grouped = [_within(ticks, end, SERIES_STEP_S) for end in ends]
    out: dict[str, object] = {"t": [round(end - now) for end in ends], "step_s": SERIES_STEP_S}
    for backend in backends:
        counts = [_counts(group, route, backend) for group in grouped]
        out[backend] = {
            "rps": [round(total / SERIES_STEP_S, 2) for total, _ in counts],
            "error_rate": [errors / total if total else None for total, errors in counts],
            "p99_ms": [_latency_ms(group, route, backend, 0.99) for group in grouped],
        }
    return out
