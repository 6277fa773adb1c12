"""Parity tests: the same requests to monolith and service, responses diffed with noise cancelled.

Public API (stable; docs/parity.md): the comparison facts and engine below. Storage, the
summary and the gate are added to this list as they land.
"""

from __future__ import annotations

from strangler.parity.compare import Comparer, Comparison, compare_replies
from strangler.parity.diff import Difference, diff_json
from strangler.parity.endpoint import endpoint_of
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.noise import NoiseThresholds, is_regression

__all__ = [
    "Comparer",
    "Comparison",
    "Difference",
    "Exchange",
    "NoiseThresholds",
    "Reply",
    "compare_replies",
    "diff_json",
    "endpoint_of",
    "is_regression",
]
