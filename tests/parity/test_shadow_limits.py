"""Through the real proxy process: answers the comparison cannot judge (beyond the capture
cap, nested too deep) are counted as not compared, never as matches, and cost no other pair."""

from __future__ import annotations

import httpx
import pytest

from tests.parity import test_shadow_proxy
from tests.parity.shop_servers import Behaviour
from tests.parity.test_shadow_proxy import wait_for_samples
from tests.proxy.helpers import ProxyProcess

shadowing = test_shadow_proxy.shadowing  # the fixture: a proxy shadowing onto a candidate

pytestmark = pytest.mark.slow  # real proxy processes, a worker process each


def shadow_metric(proxy: ProxyProcess, outcome: str) -> int:
    text = httpx.get(f"{proxy.admin_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("strangler_proxy_shadow_total") and f'outcome="{outcome}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def test_answers_beyond_the_capture_cap_are_counted_never_compared_as_equal(shadowing, tmp_path):
    """~217 KB pages with every price different: cut at 64 KiB both sides look alike."""
    from strangler.cli import main

    proxy = shadowing(Behaviour(padding=20_000), Behaviour(padding=20_000, price_bug=1.0),
                      noise_percent=100)  # fmt: skip
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for n in range(30):
            answer = client.get(f"/api/v1/products?page={n}", headers={"X-User-ID": f"u{n}"})
            assert answer.status_code == 200 and len(answer.content) > 200_000
    result = wait_for_samples(tmp_path, 30)
    assert (result.samples, result.skipped) == (0, 30)
    assert shadow_metric(proxy, "response_too_large") == 30
    code = main(["parity", "report", "--route", "products", "--store",
                 str(tmp_path / "parity.sqlite3"), "--since", "1h", "--gate", "99.5",
                 "--min-samples", "30"])  # fmt: skip
    assert code == 1


def test_a_deeply_nested_answer_is_skipped_and_its_batch_still_recorded(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour())
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        # One batch (the hand-off drains every 0.25 s): the hostile answer among good ones.
        for n in range(5):
            query = "&deep=1" if n == 2 else ""
            assert client.get(f"/api/v1/products?page={n}{query}",
                              headers={"X-User-ID": f"u{n}"}).status_code == 200  # fmt: skip
    result = wait_for_samples(tmp_path, 5)
    assert (result.samples, result.skipped) == (4, 1)
    assert result.endpoints[0].skipped == (("too_deep", 1),)
    # The worker is alive and keeps comparing.
    httpx.get(f"{proxy.url}/api/v1/products/7", headers={"X-User-ID": "z"}, timeout=10)
    assert wait_for_samples(tmp_path, 6).samples == 5
