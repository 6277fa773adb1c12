"""Metrics render in Prometheus format and add up across workers."""

from strangler.control.validate import parse_table
from strangler.proxy.metrics import ProxyMetrics, route_gauges
from tests.control.test_validate import base


def test_snapshots_from_workers_add_up():
    one, two = ProxyMetrics(), ProxyMetrics()
    one.observe("products", "catalog", 200, 0.002, 0.0001)
    two.observe("products", "catalog", 200, 0.004, 0.0002)
    two.observe("products", "monolith", 502, 0.001, 0.001)
    two.fallbacks[("products", "connect_failed")] += 1
    one.breaker_state[("catalog",)] = 0
    two.breaker_state[("catalog",)] = 2
    one.config_version, two.config_version = 7, 6
    total = ProxyMetrics()
    total.absorb(one.snapshot())
    total.absorb(two.snapshot())
    text = total.render()
    assert (
        'strangler_proxy_requests_total{route="products",backend="catalog",status="200"} 2' in text
    )
    assert 'request_duration_seconds_count{route="products",backend="catalog"} 2' in text
    assert 'strangler_proxy_fallbacks_total{route="products",reason="connect_failed"} 1' in text
    assert 'strangler_proxy_breaker_state{backend="catalog"} 2' in text, "the worst state shows"
    assert "strangler_proxy_config_version 6" in text, "the oldest version in force shows"


def test_route_gauges_show_each_routes_weight_and_one_state():
    table, _ = parse_table(base(weight=12.5))
    assert table is not None
    text = route_gauges(table)
    assert 'strangler_route_weight{route="products"} 12.5' in text
    states = [line for line in text.splitlines() if line.startswith("strangler_route_state{")]
    assert len(states) == 4
    assert 'strangler_route_state{route="products",state="canary"} 1' in states
    assert sum(int(line.rsplit(" ", 1)[1]) for line in states) == 1
