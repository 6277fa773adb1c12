"""What the page shows from the proxy's /metrics: replicas summed, restarts, split, p50/p99."""

from __future__ import annotations

import pytest

from strangler.dashboard.metrics import Scrape, add_ticks, difference, parse_scrape, quantile
from strangler.dashboard.traffic import backend_stats, fallbacks, series
from strangler.proxy.metrics import ProxyMetrics


def rendered(*requests: tuple[str, str, int, float], fallback: int = 0) -> Scrape:
    """A scrape of what a real ProxyMetrics renders after these requests."""
    metrics = ProxyMetrics()
    for route, backend, status, seconds in requests:
        metrics.observe(route, backend, status, seconds, 0.0001)
    for _ in range(fallback):
        metrics.fallbacks[("products", "service_failed")] += 1
    metrics.breaker_state[("catalog",)] = 2
    metrics.config_version = 7
    return parse_scrape(metrics.render())


def test_a_scrape_reads_counts_histograms_breakers_and_version() -> None:
    scrape = rendered(("products", "catalog", 200, 0.003), ("products", "catalog", 502, 0.2))
    assert scrape.requests == {
        ("products", "catalog", "200"): 1.0,
        ("products", "catalog", "502"): 1.0,
    }
    assert scrape.breakers == {"catalog": 2}
    assert scrape.config_version == 7
    assert scrape.bounds[-1] == float("inf")
    assert scrape.latency[("products", "catalog")][-1] == 2.0


def test_text_that_is_not_prometheus_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_scrape("<html>login</html>\n")


def test_the_first_requests_after_an_idle_start_carry_their_latency() -> None:
    idle = parse_scrape(ProxyMetrics().render())
    busy = rendered(("products", "catalog", 200, 0.003))
    tick = difference(idle, busy, at=2.0, seconds=1.0)
    assert sum(tick.latency[("products", "catalog")]) == 1.0


def test_a_restarted_replica_counts_from_zero_not_backwards() -> None:
    before = rendered(*[("products", "monolith", 200, 0.01)] * 10)
    after_restart = rendered(*[("products", "monolith", 200, 0.01)] * 3)
    tick = difference(before, after_restart, at=2.0, seconds=1.0)
    assert tick.requests == {("products", "monolith", "200"): 3.0}
    assert sum(tick.latency[("products", "monolith")]) == 3.0


def test_replicas_are_summed() -> None:
    empty = rendered()
    one = difference(empty, rendered(("products", "catalog", 200, 0.01)), 2.0, 1.0)
    two = difference(
        empty, rendered(("products", "catalog", 200, 0.01), ("products", "catalog", 200, 0.4)),
        2.0, 1.0,
    )  # fmt: skip
    both = add_ticks([one, two], 2.0, 1.0)
    assert both.requests == {("products", "catalog", "200"): 3.0}
    assert sum(both.latency[("products", "catalog")]) == 3.0


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    bounds = (0.1, 0.2, float("inf"))
    assert quantile(0.5, bounds, [0, 10, 0]) == pytest.approx(0.15)
    assert quantile(0.99, bounds, [0, 0, 4]) == 0.2  # in +Inf: the largest finite bound
    assert quantile(0.5, bounds, [0, 0, 0]) is None


def test_the_split_errors_and_latency_of_a_route() -> None:
    empty = rendered()
    busy = rendered(
        *[("products", "monolith", 200, 0.004)] * 6,
        *[("products", "catalog", 200, 0.004)] * 3,
        ("products", "catalog", 503, 0.004),
        fallback=2,
    )
    ticks = [difference(empty, busy, at=100.0, seconds=1.0)]
    mono, svc = backend_stats(ticks, "products", ["monolith", "catalog"], now=100.5)
    assert (mono.requests, svc.requests) == (6, 4)
    assert (mono.share, svc.share) == (0.6, 0.4)
    assert (svc.errors, svc.error_rate, mono.error_rate) == (1, 0.25, 0.0)
    assert mono.p50_ms is not None and 2.5 < mono.p50_ms <= 5.0
    assert fallbacks(ticks, "products", now=100.5) == {"service_failed": 2}
    # Ten seconds on, the split is empty, errors and latency still count (60 s window).
    later = backend_stats(ticks, "products", ["monolith", "catalog"], now=111.0)
    assert (later[0].share, later[0].rps, later[0].requests) == (None, 0.0, 6)
    drawn = series(ticks, "products", ["monolith", "catalog"], now=100.5)
    assert drawn["catalog"]["rps"][-1] == 0.8  # type: ignore[index]
    assert drawn["catalog"]["error_rate"][0] is None  # type: ignore[index]
