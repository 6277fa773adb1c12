"""Counts of comparisons per route, endpoint and second, accumulated in memory between writes.

A store writes a Tally in one transaction, so the request path and the comparison loop never
wait on a database per comparison.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from strangler.parity.compare import Comparison

WINDOW_SECONDS = 1  # a gate's window is exact to the second (the store folds old ones)
# Distinct sets of differing fields kept per endpoint and second; more collapse into OVERFLOW,
# which counts as a mismatch (never silently as a match).
MAX_SIGNATURES = 64
OVERFLOW = "*"
LATENCY_BASE = 1.1  # latency histogram buckets grow by 10%, so percentiles are within 10%
EXAMPLES_PER_FIELD = 5  # example pairs kept per route, endpoint and field (newest win)
# Endpoints kept apart per route and minute; paths a folding rule missed (slugs, junk a
# client sends) beyond this count as one, so the store cannot be flooded with endpoints.
MAX_ENDPOINTS = 200
ENDPOINTS_SPAN = 60  # seconds over which MAX_ENDPOINTS applies
OTHER_ENDPOINTS = "(other endpoints)"
# The same for fields, per endpoint and window of one tally (a batch): differences beyond it
# count under one path.
MAX_FIELDS = 200
OTHER_FIELDS = "(other fields)"
# The kind each answer-level field counts under by its plain name; every other kind of
# difference at that path (a JSON field named `status`, `error` or `body`) counts apart.
ANSWER_FIELDS = {"status": "status", "error": "error", "body": "text"}

WindowKey = tuple[str, str, int]


_LOG_BASE = math.log(LATENCY_BASE)  # what math.log(x, LATENCY_BASE) divides by, every call


def latency_bucket(ms: float) -> int:
    """Bucket index of a latency; bucket b holds (1.1^(b-1), 1.1^b] ms."""
    return max(0, math.ceil(math.log(max(ms, 0.01) / 0.01) / _LOG_BASE))


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
    skipped: Counter[str] = field(default_factory=Counter)  # not compared, by reason


def field_key(path: str, kind: str) -> str:
    """The field a difference counts under: its path when it is the path's plain kind (a
    value change of a JSON field, the status code, a header), else the path and the kind. So
    value noise (a timestamp) never cancels a candidate dropping the field or answering it as
    another type, and noise of a JSON field named `status` never cancels a status code."""
    plain = ANSWER_FIELDS.get(path) or ("header" if path.startswith("header:") else "value")
    return path if kind == plain else f"{path} ({kind})"


def _bounded(counts: WindowCounts, differences: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The differing fields, with their kinds noted; new ones past MAX_FIELDS as one."""
    kinds = counts.kinds
    fields = set()
    for path, kind in differences:
        path = field_key(path, kind)
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
    endpoints: dict[tuple[str, int], set[str]] = field(default_factory=dict)  # per minute

    def add(self, c: Comparison) -> None:
        window = int(c.at // WINDOW_SECONDS * WINDOW_SECONDS)
        endpoint = c.endpoint
        seen = self.endpoints.setdefault((c.route, window - window % ENDPOINTS_SPAN), set())
        if endpoint not in seen:
            if len(seen) >= MAX_ENDPOINTS:
                endpoint = f"{endpoint.split(' ', 1)[0]} {OTHER_ENDPOINTS}"
            else:
                seen.add(endpoint)
        key = (c.route, endpoint, window)
        counts = self.windows.get(key)
        if counts is None:
            counts = self.windows[key] = WindowCounts()
        self.comparisons += 1
        if c.skipped is not None:  # never a sample: neither a match nor a difference
            counts.skipped[c.skipped] += 1
            return
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
