"""Prometheus counters for parity: comparisons by route, endpoint and outcome.

Kept by whatever compares (the local worker, a Celery worker) and served by it on a port of
its own; what the proxy drops before comparing is counted on the proxy's /metrics.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server

from strangler.parity.compare import Comparison

Outcome = Literal["same", "different", "candidate_error"]


def outcome_of(c: Comparison) -> Outcome:
    """`same` without any raw difference; `candidate_error` when the candidate did not answer."""
    if c.candidate_status == 0:
        return "candidate_error"
    return "different" if c.raw else "same"


class ParityMetrics:
    """The counters of one worker, in a registry of their own (served on /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.comparisons = Counter(
            "strangler_parity_comparisons",
            "Shadowed or replayed exchanges compared, by outcome (before noise cancelling).",
            ["route", "endpoint", "outcome"],
            registry=self.registry,
        )

    def observe(self, c: Comparison) -> None:
        self.comparisons.labels(c.route, c.endpoint, outcome_of(c)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics from a daemon thread (prometheus_client's own HTTP server)."""
        start_http_server(port, addr=host, registry=self.registry)
