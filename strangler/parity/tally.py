"""Counts of comparisons per route, endpoint and minute, accumulated in memory between writes.

A store writes a Tally in one transaction, so the request path and the comparison loop never
wait on a database per comparison.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from strangler.parity.compare import Comparison

WINDOW_SECONDS = 60
# Distinct sets of differing fields kept per endpoint and window; more collapse into OVERFLOW,
# which counts as a mismatch (never silently as a match).
MAX_SIGNATURES = 64
OVERFLOW = "*"
LATENCY_BASE = 1.1  # latency histogram buckets grow by 10%, so percentiles are within 10%
EXAMPLES_PER_FIELD = 5  # example pairs kept per route, endpoint and field (newest win)
# Endpoints kept apart per route and window; paths a folding rule missed (slugs, junk a
# client sends) beyond this count as one, so the store cannot be flooded with endpoints.
MAX_ENDPOINTS = 200
OTHER_ENDPOINTS = "(other endpoints)"
# The same for fields, per endpoint and window of one tally (a batch): differences beyond it
# count under one path.
MAX_FIELDS = 200
OTHER_FIELDS = "(other fields)"

WindowKey = tuple[str, str, int]


def latency_bucket(ms: float) -> int:
    """Bucket index of a latency; bucket b holds (1.1^(b-1), 1.1^b] ms."""
    return max(0, math.ceil(math.log(max(ms, 0.01) / 0.01, LATENCY_BASE)))


def bucket_upper_ms(bucket: int) -> float:
    return 0.01 * LATENCY_BASE**bucket


def signature(fields: frozenset[str]) -> str:
    """The set of fields one comparison differed in, as one sortable string ("" = none)."""
    return "\n".join(sorted(fields))


@dataclass
class WindowCounts:
    """What one endpoint saw in one window."""

    samples: int = 0
    raw_clean: int = 0
    noise_samples: int = 0
    raw: Counter[str] = field(default_factory=Counter)
    noise: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, str] = field(default_factory=dict)
    signatures: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[int, int]] = field(default_factory=Counter)
    latency: Counter[tuple[str, int]] = field(default_factory=Counter)


def _bounded(counts: WindowCounts, differences: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The differing fields, with their kinds noted; new ones past MAX_FIELDS as one."""
    kinds = counts.kinds
    fields = set()
    for path, kind in differences:
        if path not in kinds:
            if len(kinds) >= MAX_FIELDS:
                path, kind = OTHER_FIELDS, "value"
            kinds.setdefault(path, kind)
        fields.add(path)
    return frozenset(fields)


@dataclass
class Tally:
    """Accumulates comparisons; `examples` keeps the newest pair per differing field."""

    windows: dict[WindowKey, WindowCounts] = field(default_factory=dict)
    examples: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    comparisons: int = 0
    endpoints: Counter[tuple[str, int]] = field(default_factory=Counter)

    def add(self, c: Comparison) -> None:
        window = int(c.at // WINDOW_SECONDS * WINDOW_SECONDS)
        key = (c.route, c.endpoint, window)
        counts = self.windows.get(key)
        if counts is None and self.endpoints[(c.route, window)] >= MAX_ENDPOINTS:
            method = c.endpoint.split(" ", 1)[0]
            key = (c.route, f"{method} {OTHER_ENDPOINTS}", window)
            counts = self.windows.get(key)
        if counts is None:
            counts = self.windows[key] = WindowCounts()
            self.endpoints[(c.route, window)] += 1
        self.comparisons += 1
        counts.samples += 1
        raw_fields = _bounded(counts, c.raw)
        if not raw_fields:
            counts.raw_clean += 1
        counts.raw.update(raw_fields)
        if c.noise is not None:
            counts.noise_samples += 1
            counts.noise.update(_bounded(counts, c.noise))
        sig = signature(raw_fields)
        # A clean comparison ("") is always counted as one, whatever came before it.
        if not sig or sig in counts.signatures or len(counts.signatures) < MAX_SIGNATURES:
            counts.signatures[sig] += 1
        else:
            counts.signatures[OVERFLOW] += 1
        counts.statuses[(c.primary_status, c.candidate_status)] += 1
        counts.latency[("primary", latency_bucket(c.primary_ms))] += 1
        counts.latency[("candidate", latency_bucket(c.candidate_ms))] += 1
        if c.exchange is not None and raw_fields:
            pair = (c.at, c.exchange.as_dict())
            for path in raw_fields:
                self.examples[(c.route, key[1], path)] = pair

    def __bool__(self) -> bool:
        return self.comparisons > 0
