"""Gate readings from several real proxy replicas are summed; one that is down is no data."""

from __future__ import annotations

import httpx
import pytest

from strangler.runbook import metrics
from strangler.runbook.sources import Environment, ProxyReader, SourceError
from tests.proxy.helpers import ProxyProcess
from tests.runbook.conftest import Stack


def browse(proxy: ProxyProcess, count: int) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        for n in range(count):
            client.get("/api/v1/products/1", headers={"X-User-ID": f"u{n}"}).raise_for_status()


def test_two_replicas_are_read_as_one_proxy_and_a_missing_one_is_never_zero(stack: Stack):
    second = ProxyProcess("--config", str(stack.routes))
    try:
        env = Environment(
            routes=str(stack.routes), metrics=(stack.metrics_url, f"{second.admin_url}/metrics")
        )
        reader = ProxyReader(env)
        browse(stack.proxy, 7)  # before the window: not counted
        baseline = reader.baseline()
        browse(stack.proxy, 30)
        browse(second, 20)
        window = reader.window(baseline)
        monolith = metrics.traffic(window, "products", "monolith", fallbacks_count=-1)
        assert (monolith.requests, monolith.errors) == (50, 0)
        second.stop()
        down = second.admin_url.removeprefix("http://")
        with pytest.raises(SourceError, match=down):  # a replica down is no data, not zero
            reader.window(baseline)
    finally:
        if second.proc.poll() is None:
            second.stop()
