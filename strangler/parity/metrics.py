"""Prometheus counters for parity: comparisons by route, endpoint and outcome.

Kept by whatever compares (the local worker, a Celery worker) and served by it on a port of
its own; what the proxy drops before comparing is counted on the proxy's /metrics.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server

from strangler.parity.compare import Comparison
from strangler.parity.diff import SkipReason
from strangler.parity.tally import MAX_ENDPOINTS, OTHER_ENDPOINTS

Outcome = Literal["same", "different", "candidate_error"] | SkipReason


def outcome_of(c: Comparison) -> Outcome:
    """`same` without any raw difference; `candidate_error` when the candidate did not answer;
    the skip reason when the exchange was not compared."""
    if c.skipped is not None:
        return c.skipped
    if c.candidate_status == 0:
        return "candidate_error"
    return "different" if c.raw else "same"


class ParityMetrics:
    """The counters of one worker, in a registry of their own (served on /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.endpoints: dict[str, set[str]] = {}  # endpoint labels per route, at most MAX
        self.comparisons = Counter(
            "strangler_parity_comparisons",
            "Shadowed or replayed exchanges compared, by outcome (before noise cancelling).",
            ["route", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.lost = Counter(
            "strangler_parity_lost_pairs",
            "Captured pairs handed to this worker but not recorded: a store failure, or a "
            "previous worker process that died holding them.",
            ["route"],
            registry=self.registry,
        )

    def observe(self, comparisons: Iterable[Comparison]) -> None:
        """Count a batch, one increment per distinct label set (a labelled child's lookup
        costs more than the comparison of two equal answers)."""
        counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        for c in comparisons:
            seen = self.endpoints.setdefault(c.route, set())
            endpoint = c.endpoint
            if endpoint not in seen:
                if len(seen) >= MAX_ENDPOINTS:  # label values are series: keep them bounded
                    endpoint = f"{endpoint.split(' ', 1)[0]} {OTHER_ENDPOINTS}"
                else:
                    seen.add(endpoint)
            counts[(c.route, endpoint, outcome_of(c))] += 1
        for labels, n in counts.items():
            self.comparisons.labels(*labels).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics from a daemon thread (prometheus_client's own HTTP server)."""
        start_http_server(port, addr=host, registry=self.registry)
