"""Parity tests: the same requests to monolith and service, responses diffed with noise cancelled.

Public API (stable; described in docs/parity.md):

- `Exchange`, `Reply`: one request and each side's answer; `Comparer.compare()` -> `Comparison`.
- `open_store(location)` -> `ParityStore` (SQLite path or postgresql:// URL); `record()` adds
  comparisons to it.
- `summary(store, route, since)` -> `ParitySummary` (parity %, raw parity %, per endpoint
  samples, statuses, latencies, top fields; the latest data-parity result).
- `evaluate_gate(summary, gate, min_samples)` -> `GateResult` (pass / fail / inconclusive).
"""

from __future__ import annotations

from collections.abc import Iterable

from strangler.parity.compare import Comparer, Comparison, compare_replies
from strangler.parity.diff import Difference, diff_json
from strangler.parity.endpoint import endpoint_of
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.gate import GateResult, evaluate_gate
from strangler.parity.metrics import ParityMetrics
from strangler.parity.noise import NoiseThresholds, is_regression
from strangler.parity.store import ParityStore, StoreError, open_store
from strangler.parity.summary import (
    DataParity,
    EndpointSummary,
    FieldSummary,
    ParitySummary,
    summary,
)
from strangler.parity.tally import Tally


def record(store: ParityStore, comparisons: Iterable[Comparison]) -> int:
    """Write comparisons to the store in one transaction; returns how many."""
    tally = Tally()
    for comparison in comparisons:
        tally.add(comparison)
    if tally:
        store.write(tally)
    return tally.comparisons


__all__ = [
    "Comparer",
    "Comparison",
    "DataParity",
    "Difference",
    "EndpointSummary",
    "Exchange",
    "FieldSummary",
    "GateResult",
    "NoiseThresholds",
    "ParityMetrics",
    "ParityStore",
    "ParitySummary",
    "Reply",
    "StoreError",
    "compare_replies",
    "diff_json",
    "endpoint_of",
    "evaluate_gate",
    "is_regression",
    "open_store",
    "record",
    "summary",
]
