"""A route's parity over a time span, from stored counts: the figures reports and gates read.

`summary(store, route, since)` is the public entry point (docs/parity.md); `summarize` is the
pure function behind it, over counts already read.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from typing import Any

from strangler.parity.noise import (
    DEFAULT_THRESHOLDS,
    NoiseThresholds,
    expected_noise,
    is_regression,
)
from strangler.parity.store import ParityStore, StoredCounts
from strangler.parity.tally import OVERFLOW, bucket_upper_ms

TOP_FIELDS = 10  # differing fields listed per endpoint, most frequent first


@dataclass(frozen=True)
class FieldSummary:
    """One field's differences: raw (primary vs candidate), noise expected, and the verdict."""

    path: str
    kind: str
    raw: int
    noise: float
    regression: bool
    example: dict[str, Any] | None = None


@dataclass(frozen=True)
class Latency:
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class EndpointSummary:
    """Parity of one endpoint (method + path template)."""

    endpoint: str
    samples: int
    noise_samples: int
    parity: float | None  # % of comparisons without a regression field (noise cancelled)
    raw_parity: float | None  # % of comparisons without any difference
    statuses: tuple[tuple[int, int, int], ...]  # primary, candidate, count
    primary_latency: Latency
    candidate_latency: Latency
    fields: tuple[FieldSummary, ...]


@dataclass(frozen=True)
class DataParity:
    """The latest CDC reconcile result recorded for the route's tables."""

    at: float
    tables: tuple[str, ...]
    rows_compared: int
    drifted: int


@dataclass(frozen=True)
class ParitySummary:
    """Everything a report or gate needs about one route since a time."""

    route: str
    since: float
    samples: int
    parity: float | None
    raw_parity: float | None
    endpoints: tuple[EndpointSummary, ...]
    data: DataParity | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _percentile(buckets: dict[int, int], share: float) -> float | None:
    total = sum(buckets.values())
    if not total:
        return None
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= share * total:
            return round(bucket_upper_ms(bucket), 3)
    return None


def data_parity(at: float, result: dict[str, Any]) -> DataParity:
    """DataParity from `strangler cdc reconcile --json` output."""
    tables = result.get("tables", [])
    return DataParity(
        at=at,
        tables=tuple(str(t.get("table", "")) for t in tables),
        rows_compared=sum(int(t.get("source_rows", 0)) for t in tables),
        drifted=int(result.get("drifted", sum(int(t.get("drifted", 0)) for t in tables))),
    )


def summarize(
    route: str,
    since: float,
    counts: StoredCounts,
    thresholds: NoiseThresholds = DEFAULT_THRESHOLDS,
    data: DataParity | None = None,
) -> ParitySummary:
    """Noise-cancelled parity per endpoint: a comparison is a mismatch when it differed in a
    field the noise model calls a regression (or in an overflowed set of fields)."""
    fields: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
    for endpoint, path, kind, raw, noise in counts.fields:
        fields[endpoint].append((path, kind, int(raw), int(noise)))
    signatures: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for endpoint, sig, n in counts.signatures:
        signatures[endpoint].append((sig, int(n)))
    statuses: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for endpoint, p, c, n in counts.statuses:
        statuses[endpoint].append((int(p), int(c), int(n)))
    latency: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for endpoint, side, bucket, n in counts.latency:
        latency[(endpoint, side)][int(bucket)] = int(n)
    endpoints = []
    total = clean_total = raw_clean_total = 0
    for endpoint, samples, raw_clean, noise_samples in counts.windows:
        samples, raw_clean, noise_samples = int(samples), int(raw_clean), int(noise_samples)
        verdicts = []
        for path, kind, raw, noise in fields[endpoint]:
            regression = is_regression(raw, noise, samples, noise_samples, thresholds)
            noise_expected = round(expected_noise(noise, noise_samples, samples), 1)
            verdicts.append(FieldSummary(path, kind, raw, noise_expected, regression))
        regressions = {f.path for f in verdicts if f.regression}
        mismatched = sum(
            n
            for sig, n in signatures[endpoint]
            if sig == OVERFLOW or (sig and regressions.intersection(sig.split("\n")))
        )
        verdicts.sort(key=lambda f: (not f.regression, -f.raw, f.path))
        endpoints.append(
            EndpointSummary(
                endpoint=endpoint,
                samples=samples,
                noise_samples=noise_samples,
                parity=_percent(samples - mismatched, samples),
                raw_parity=_percent(raw_clean, samples),
                statuses=tuple(sorted(statuses[endpoint])),
                primary_latency=Latency(
                    _percentile(latency[(endpoint, "primary")], 0.5),
                    _percentile(latency[(endpoint, "primary")], 0.99),
                ),
                candidate_latency=Latency(
                    _percentile(latency[(endpoint, "candidate")], 0.5),
                    _percentile(latency[(endpoint, "candidate")], 0.99),
                ),
                fields=tuple(f for f in verdicts if f.raw)[:TOP_FIELDS],
            )
        )
        total += samples
        clean_total += samples - mismatched
        raw_clean_total += raw_clean
    return ParitySummary(
        route=route,
        since=since,
        samples=total,
        parity=_percent(clean_total, total),
        raw_parity=_percent(raw_clean_total, total),
        endpoints=tuple(endpoints),
        data=data,
    )


def summary(
    store: ParityStore,
    route: str,
    since: float | None = None,
    thresholds: NoiseThresholds = DEFAULT_THRESHOLDS,
    examples: bool = False,
) -> ParitySummary:
    """The parity of `route` since `since` (epoch seconds; default the last hour).

    With `examples`, each listed field carries its newest stored example pair.
    """
    since = time.time() - 3600 if since is None else since
    latest = store.latest_data(route)
    data = data_parity(*latest) if latest else None
    result = summarize(route, since, store.counts(route, since), thresholds, data)
    if not examples:
        return result
    endpoints = tuple(
        replace(
            e,
            fields=tuple(
                replace(f, example=store.example(route, e.endpoint, f.path)) for f in e.fields
            ),
        )
        for e in result.endpoints
    )
    return replace(result, endpoints=endpoints)
