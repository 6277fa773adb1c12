"""Gates decide only on enough real data: zero traffic, NaN, missing series are inconclusive."""

from __future__ import annotations

import math

from strangler.proxy.metrics import ProxyMetrics
from strangler.runbook import gates
from strangler.runbook.gates import Traffic
from strangler.runbook.metrics import combine, delta, histogram_quantile, parse, traffic

SOURCE = "test"


def test_zero_traffic_is_inconclusive_never_a_pass():
    none = Traffic(0, 0, None)
    result = gates.error_rate(none, none, 0.01, 50, SOURCE)
    assert result.outcome == "inconclusive"
    assert result.samples == {"service_requests": 0, "monolith_requests": 0}


def test_a_missing_series_is_not_zero_errors():
    result = gates.error_rate(Traffic(None, None), Traffic(500, 0), 0.01, 50, SOURCE)
    assert result.outcome == "inconclusive"
    assert "no service request data" in result.reason


def test_nan_from_the_source_is_inconclusive():
    nan = float("nan")
    assert gates.error_rate(Traffic(nan, nan), Traffic(100, 0), 0.01, 10, SOURCE).outcome == (
        "inconclusive"
    )
    ratio = gates.latency_ratio(Traffic(100, 0, nan), Traffic(100, 0, 0.1), 2, 10, SOURCE)
    assert ratio.outcome == "inconclusive"
    assert gates.cdc_lag(nan, 3, 5, SOURCE).outcome == "inconclusive"
    assert gates.breaker_closed(nan, "catalog", SOURCE).outcome == "inconclusive"


def test_a_minimum_sample_not_reached_waits_even_when_the_rate_is_perfect():
    result = gates.error_rate(Traffic(49, 0), Traffic(1000, 0), 0.01, 50, SOURCE)
    assert result.outcome == "inconclusive"
    assert "fewer than 50" in result.reason


def test_error_rate_compares_with_the_monolith_plus_delta_and_shows_what_it_read():
    passed = gates.error_rate(Traffic(100, 2), Traffic(100, 1), 0.01, 50, SOURCE)
    failed = gates.error_rate(Traffic(100, 3), Traffic(100, 1), 0.01, 50, SOURCE)
    assert (passed.outcome, failed.outcome) == ("pass", "fail")
    assert failed.readings["service_rate"] == 0.03
    assert failed.threshold == "service <= monolith + 0.01, >= 50 requests each"
    assert "3.00% (3/100)" in failed.reason


def test_a_zero_latency_baseline_decides_nothing():
    result = gates.latency_ratio(Traffic(100, 0, 0.2), Traffic(100, 0, 0.0), 2, 50, SOURCE)
    assert result.outcome == "inconclusive"
    assert (
        gates.latency_ratio(Traffic(100, 0, 0.3), Traffic(100, 0, 0.1), 2, 50, SOURCE).outcome
        == "fail"
    )


def test_drift_with_no_table_compared_is_not_zero_drift():
    assert gates.drift({"tables": [], "drifted": 0}, SOURCE).outcome == "inconclusive"
    assert gates.drift(None, SOURCE).outcome == "inconclusive"
    report = {"tables": [{"source_rows": 10}], "drifted": 0}
    assert gates.drift(report, SOURCE).outcome == "pass"
    assert gates.drift(report | {"drifted": 2}, SOURCE).outcome == "fail"


def test_approval_waits_for_a_human():
    assert gates.approval(None, "", SOURCE).outcome == "inconclusive"
    assert gates.approval("alice", "dashboards fine", SOURCE).outcome == "pass"


def rendered(observations: list[tuple[str, str, int, float]], fallbacks: int = 0) -> str:
    """The real proxy's /metrics text for these (route, backend, status, seconds)."""
    metrics = ProxyMetrics()
    for route, backend, status, seconds in observations:
        metrics.observe(route, backend, status, seconds, 0.0001)
    metrics.fallbacks[("products", "timeout")] += fallbacks
    metrics.breaker_state[("catalog",)] = 0
    return metrics.render()


def test_replicas_are_summed_and_a_restarted_replica_counts_from_zero():
    base_a = parse(rendered([("products", "catalog", 200, 0.01)] * 10))
    now_a = parse(
        rendered(
            [("products", "catalog", 200, 0.01)] * 30 + [("products", "catalog", 503, 0.01)] * 2
        )
    )
    base_b = parse(rendered([("products", "catalog", 200, 0.01)] * 100))
    now_b = parse(rendered([("products", "catalog", 200, 0.01)] * 5))  # restarted
    window = combine([delta(now_a, base_a), delta(now_b, base_b)])
    service = traffic(window, "products", "catalog", fallbacks_count=1)
    assert (service.requests, service.errors) == (27, 2)


def test_fallbacks_count_as_service_failures_not_monolith_traffic():
    text = rendered([("products", "monolith", 200, 0.01)] * 20, fallbacks=4)
    scrape = parse(text)
    service = traffic(scrape, "products", "catalog", fallbacks_count=1)
    monolith = traffic(scrape, "products", "monolith", fallbacks_count=-1)
    assert (service.requests, service.errors) == (4, 4)
    assert (monolith.requests, monolith.errors) == (16, 0)


def test_no_series_for_a_backend_is_no_data():
    scrape = parse(rendered([("products", "monolith", 200, 0.01)]))
    assert traffic(scrape, "products", "catalog", fallbacks_count=1) == Traffic(None, None, None)


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == 0.1
    assert math.isclose(histogram_quantile(0.99, buckets) or 0, 0.198)
    assert histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1


def test_full_traffic_is_judged_on_the_service_alone_with_a_minimum():
    assert gates.service_error_rate(Traffic(10, 0), 0.01, 20, SOURCE).outcome == "inconclusive"
    assert gates.service_error_rate(Traffic(200, 1), 0.01, 20, SOURCE).outcome == "pass"
    assert gates.service_error_rate(Traffic(200, 5), 0.01, 20, SOURCE).outcome == "fail"
    assert gates.service_error_rate(Traffic(None, None), 0.01, 20, SOURCE).outcome == (
        "inconclusive"
    )


def test_boundaries_are_clean_only_with_no_crossing_and_every_file_parsed():
    crossing = {
        "source": "catalog",
        "target": "orders",
        "kind": "import",
        "evidence": [{"file": "catalog/models.py", "line": 3, "detail": "import x"}],
    }
    assert gates.boundaries_clean({"violations": [], "parse_errors": []}, SOURCE).outcome == "pass"
    failed = gates.boundaries_clean({"violations": [crossing], "parse_errors": []}, SOURCE)
    assert failed.outcome == "fail" and "catalog/models.py:3" in failed.reason
    unparsed = {"violations": [], "parse_errors": [{"file": "a.py", "line": 1}]}
    assert gates.boundaries_clean(unparsed, SOURCE).outcome == "fail"
    assert gates.boundaries_clean(None, SOURCE).outcome == "inconclusive"
    # A new app that clustering alone put in a checked context: its crossings are unknown.
    loose = {"context": "catalog", "new_context": False, "models": ["refunds.Refund"]}
    unpinned = gates.boundaries_clean(
        {"violations": [], "parse_errors": [], "unpinned": [{**loose, "modules": []}]}, SOURCE
    )
    assert unpinned.outcome == "fail" and "1 contexts holding unpinned code" in unpinned.reason
    assert unpinned.readings["unpinned"] == ["catalog: refunds.Refund"]


def test_cdc_lag_is_what_the_service_has_not_applied_not_only_what_the_relay_has_not_sent():
    # A stopped consumer: the relay published everything, the service applied none of it.
    stalled = gates.cdc_lag(12.0, 40, 5, SOURCE, backlog=0)
    assert (stalled.outcome, stalled.readings["outbox_backlog"]) == ("fail", 0)
    assert "40 changes not applied in the service (0 of them unpublished)" in stalled.reason
    assert gates.cdc_lag(0.4, 2, 5, SOURCE, backlog=2).outcome == "pass"
    assert gates.cdc_lag(None, None, 5, SOURCE, backlog=0).outcome == "inconclusive"


def test_drift_fails_on_a_field_that_no_event_writes():
    # RenameField(name -> title) in the monolith: 0 rows differ in what is compared, and the
    # service's `name` is compared no more.
    table = {"table": "catalog_product", "model": "catalog.Product", "source_rows": 10,
             "drifted": 0, "fields_not_carried": ["name"]}  # fmt: skip
    result = gates.drift({"tables": [table], "drifted": 0}, SOURCE)
    assert result.outcome == "fail"
    assert "no event writes catalog.Product.name" in result.reason


def test_a_cdc_age_from_the_future_is_no_reading_not_an_age_of_zero():
    # Measured with a clock behind the one that dated the rows, the backlog's oldest change
    # is -30 s old: rounded up to 0 it passed any max_seconds with 40 changes unapplied.
    future = gates.cdc_lag(-30.0, 40, 5, SOURCE, backlog=40)
    assert future.outcome == "inconclusive", future
    assert "30.0 s in the future" in future.reason and "clock" in future.reason
    assert future.readings["oldest_unapplied_seconds"] == -30.0
    assert gates.cdc_lag(-0.2, 1, 5, SOURCE, backlog=1).outcome == "pass"  # ms rounding


def test_a_parity_store_that_is_not_there_is_named_and_never_created(tmp_path):
    """A mistyped --parity-store was created (directory and empty store) and the gate read
    "0 samples, 20 needed" until its deadline, pointing at traffic instead of the typo."""
    import pytest

    from strangler.runbook.sources import Environment, SourceError, Window, parity

    typo = tmp_path / "parity-stroe" / "parity.sqlite3"
    with pytest.raises(SourceError, match=f"no parity store at {typo}"):
        parity(
            Environment("routes.toml", parity_store=str(typo)),
            "products",
            99,
            20,
            Window(baseline={}),
        )
    assert not typo.parent.exists()
