"""Benchmark the dashboard's per-second work for a table of busy routes, next to a scrape parse.

    .venv/bin/python bench/dashboard.py [--routes 50] [--repeats 5]

Each second the dashboard parses every replica's /metrics and, at most every 0.5 s, computes
the page state (live split, errors, p50/p99 and 60-bin charts for every route) from five
minutes of traffic. Both are timed here on the same data: ROUTES routes, two backends each,
answering 200 and 503 with latencies in every bucket. The peer is prometheus_client's own
text parser reading one scrape of those routes (the floor of what reading a proxy costs).
Medians of REPEATS. The last line is one JSON object, also kept in bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from strangler.dashboard import traffic
from strangler.dashboard.metrics import Tick, difference, parse_scrape
from strangler.proxy.metrics import LATENCY_BUCKETS, ProxyMetrics

SECONDS = 300  # the charts' span


def scrape_text(routes: int, scale: int) -> str:
    """What a proxy renders after `scale` rounds of requests on every route and backend."""
    metrics = ProxyMetrics()
    for _ in range(scale):
        for r in range(routes):
            for backend in ("monolith", "service"):
                for bound in LATENCY_BUCKETS:
                    metrics.observe(f"route-{r}", backend, 200, bound * 0.9, 0.0001)
                metrics.observe(f"route-{r}", backend, 503, 0.02, 0.0001)
    return metrics.render()


def median_s(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    before, after = scrape_text(args.routes, 1), scrape_text(args.routes, 2)
    one_second = difference(parse_scrape(before), parse_scrape(after), 0.0, 1.0)
    now = time.time()
    periods: deque[Tick] = deque(maxlen=traffic.SERIES_BINS + 1)
    for second in range(SECONDS):
        at = now - SECONDS + second + 1
        traffic.fold(periods, replace(one_second, at=at))
    names = [f"route-{r}" for r in range(args.routes)]

    def page_state() -> str:
        counts = traffic.index(periods, now)
        return json.dumps(
            [
                (traffic.backend_stats(counts, n, ["monolith", "service"]),
                 traffic.series(counts, n, ["monolith", "service"]))
                for n in names
            ],
            default=lambda stats: stats.__dict__,
        )  # fmt: skip

    state_s = median_s(page_state, args.repeats)
    parse_s = median_s(lambda: parse_scrape(after), args.repeats)
    peer_s = median_s(lambda: list(text_string_to_metric_families(after)), args.repeats)
    print(f"{args.routes} routes, 5 min of traffic; medians of {args.repeats}")
    print(f"  page state (split, errors, p50/p99, charts): {state_s * 1000:8.1f} ms")
    print(f"  parse one replica's /metrics (ours):         {parse_s * 1000:8.1f} ms")
    print(f"  prometheus_client text parser (peer):        {peer_s * 1000:8.1f} ms")
    from record import publish  # the last line, kept in bench/results/dashboard.json

    publish(
        "dashboard",
        {
            "routes": args.routes,
            "page_state_ms": round(state_s * 1000, 2),
            "parse_ms": round(parse_s * 1000, 2),
            "peer_parse_ms": round(peer_s * 1000, 2),
            "page_state_vs_peer_parse": round(state_s / peer_s, 2),
            "parse_vs_peer_parse": round(parse_s / peer_s, 2),
        },
    )


if __name__ == "__main__":
    main()
