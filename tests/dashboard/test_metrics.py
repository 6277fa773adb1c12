"""What the page shows from the proxy's /metrics: replicas summed, restarts, split, p50/p99."""

from __future__ import annotations

from collections import deque

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strangler.dashboard.metrics import Scrape, add_ticks, difference, parse_scrape, quantile
from strangler.dashboard.traffic import backend_stats, fold, index, series
from strangler.proxy.metrics import ProxyMetrics


def rendered(
    *requests: tuple[str, str, int, float], fallback: int = 0, shadowed: int = 0
) -> Scrape:
    """A scrape of what a real ProxyMetrics renders after these requests."""
    metrics = ProxyMetrics()
    for route, backend, status, seconds in requests:
        metrics.observe(route, backend, status, seconds, 0.0001)
    for _ in range(fallback):
        metrics.fallbacks[("products", "service_failed")] += 1
    for _ in range(shadowed):
        metrics.shadow[("products", "sent")] += 1
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
    assert scrape.store_healthy
    unhealthy = parse_scrape(
        "strangler_proxy_config_version 3\nstrangler_proxy_route_store_healthy 0\n"
    )
    assert (unhealthy.config_version, unhealthy.store_healthy) == (3, False)
    assert scrape.bounds[-1] == float("inf")
    assert scrape.latency[("products", "catalog")][-1] == 2.0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<html>login</html>\n", None),
        ('{"backend": "monolith"}\n', None),
        ("node_load1 0.5\n", "no strangler_proxy_config_version"),
        (
            "strangler_proxy_config_version 1\nstrangler_proxy_requests_total 3\n",
            "no 'route' label",
        ),
        (
            "strangler_proxy_config_version 1\nstrangler_proxy_requests_total{route=x} 3\n",
            "bad labels",
        ),
        ("strangler_proxy_config_version one\n", "line 1"),
        (
            "strangler_proxy_config_version 1\n"
            'strangler_proxy_requests_total{route="a",backend="b",status="200"} NaN\n',
            "not a count",
        ),
        (
            "strangler_proxy_config_version 1\n"
            'strangler_proxy_fallbacks_total{route="a",reason="x"} -4\n',
            "not a count",
        ),
    ],
)
def test_text_that_is_not_a_strangler_proxys_metrics_is_refused(text: str, why: str | None) -> None:
    with pytest.raises(ValueError, match=why):
        parse_scrape(text)


def test_our_parser_reads_what_prometheus_client_reads() -> None:
    metrics = ProxyMetrics()
    metrics.observe('odd"route\\x', "back\nend", 200, 0.003, 0.0001)
    metrics.observe("products", "catalog", 504, 7.5, 0.0001)
    metrics.fallbacks[("products", "service_failed")] += 3
    text = metrics.render()
    ours = parse_scrape(text)
    theirs = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert ours.requests[('odd"route\\x', "back\nend", "200")] == 1.0
    for (route, backend, status), value in ours.requests.items():
        key = ("strangler_proxy_requests_total",
               (("backend", backend), ("route", route), ("status", status)))  # fmt: skip
        assert theirs[key] == value
    assert ours.fallbacks == {("products", "service_failed"): 3.0}
    assert ours.latency[("products", "catalog")][-2:] == (1.0, 1.0)  # cumulative: 10 s, +Inf


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
        shadowed=4,
    )
    ticks = [difference(empty, busy, at=100.0, seconds=1.0)]
    now = index(ticks, now=100.5)
    mono, svc = backend_stats(now, "products", ["monolith", "catalog"])
    assert (mono.requests, svc.requests) == (6, 4)
    assert (mono.share, svc.share) == (0.6, 0.4)
    assert (mono.rps, svc.rps) == (6.0, 4.0)  # one second of ticks so far
    assert (svc.errors, svc.error_rate, mono.error_rate) == (1, 0.25, 0.0)
    assert mono.p50_ms is not None and 2.5 < mono.p50_ms <= 5.0
    assert now.fallbacks == {"products": {"service_failed": 2}}
    assert now.shadow == {"products": {"sent": 4}}
    drawn = series(now, "products", ["monolith", "catalog"])
    assert drawn["catalog"]["rps"][-1] == 0.8  # type: ignore[index]
    assert drawn["catalog"]["error_rate"][0] is None  # type: ignore[index]
    # Eleven seconds on, the split is empty; errors and latency still count (60 s window).
    later = backend_stats(index(ticks, now=111.0), "products", ["monolith", "catalog"])
    assert (later[0].share, later[0].rps, later[0].requests) == (None, 0.0, 6)
    # Past a minute, only the charts still show it.
    gone = index(ticks, now=161.0)
    assert backend_stats(gone, "products", ["monolith"])[0].requests == 0
    assert gone.fallbacks == {}
    assert sum(series(gone, "products", ["monolith"])["monolith"]["rps"]) > 0  # type: ignore[index]


def test_one_second_ticks_fold_into_five_second_periods() -> None:
    empty = rendered()
    one = rendered(("products", "catalog", 200, 0.01))
    periods: deque = deque(maxlen=61)
    for second in range(12):  # 100..111: periods 100-104, 105-109, 110-111
        fold(periods, difference(empty, one, at=100.0 + second, seconds=1.0))
    assert [p.requests[("products", "catalog", "200")] for p in periods] == [5.0, 5.0, 2.0]
    assert [p.seconds for p in periods] == [5.0, 5.0, 2.0]
    assert sum(periods[0].latency[("products", "catalog")]) == 5.0
    mono = backend_stats(index(periods, now=111.5), "products", ["catalog"])[0]
    assert (mono.requests, mono.rps) == (12, 1.0)  # the split's periods cover all 12 s
