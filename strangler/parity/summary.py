"""A route's parity over a time span, from stored counts: the figures reports and gates read.

`summary(store, route, since)` is the public entry point (docs/parity.md); `summarize` is the
pure function behind it, over counts already read.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from strangler.parity.noise import (
    DEFAULT_THRESHOLDS,
    NoiseThresholds,
    expected_noise,
    regressions,
)
from strangler.parity.store import ParityStore, StoredCounts, StoreError, window_start
from strangler.parity.tally import OTHER_FIELDS, OVERFLOW, bucket_upper_ms

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
    detail: str = ""  # for `error`: what the side that did not answer failed with (newest)


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
    skipped: tuple[tuple[str, int], ...] = ()  # (reason, count) of exchanges not compared


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
    skipped: int = 0  # exchanges not compared (too large, too deep): never counted as matches
    primary_answered: int = 0  # comparisons where the primary answered below 400

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percent(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent, rounded down to 0.001% (in integers, exactly): rounded to
    the nearest, 99.49997% was 99.5 and passed a gate of 99.5."""
    return 100_000 * part // whole / 1000 if whole else None


def shown_percent(value: float | None) -> str:
    """A percentage as reports and gate lines print it, to 0.01%, rounded down as the figures
    are: "100.00%" only for 100, never for 99.999 ("-" for none)."""
    if value is None:
        return "-"
    return f"{Decimal(repr(value)).quantize(Decimal('0.01'), rounding=ROUND_FLOOR)}%"


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


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def reconcile_problems(result: Any) -> list[str]:
    """Every way `result` is not `strangler cdc reconcile --json` output ([] when it is one).

    A missing `drifted` is a problem, never 0: an absent count must not pass a drift gate.
    """
    if not isinstance(result, dict):
        return ["expected an object with `tables` and `drifted`"]
    problems = []
    tables = result.get("tables")
    if not isinstance(tables, list):
        problems.append("`tables`: expected a list of {table, source_rows, drifted}")
        tables = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            problems.append(f"tables[{i}]: expected an object {{table, source_rows, drifted}}")
            continue
        if not isinstance(table.get("table"), str) or not table["table"]:
            problems.append(f"tables[{i}].table: expected a table name")
        if not _is_count(table.get("source_rows")):
            problems.append(f"tables[{i}].source_rows: {table.get('source_rows')!r} is not a count")
        if "drifted" in table and not _is_count(table["drifted"]):
            problems.append(f"tables[{i}].drifted: {table['drifted']!r} is not a count")
    if not _is_count(result.get("drifted")):
        problems.append(f"drifted: {result.get('drifted')!r} is not a count")
    return problems


def data_parity(at: float, result: dict[str, Any]) -> DataParity:
    """DataParity from `strangler cdc reconcile --json` output (see reconcile_problems)."""
    tables = result["tables"]
    return DataParity(
        at=at,
        tables=tuple(t["table"] for t in tables),
        rows_compared=sum(t["source_rows"] for t in tables),
        drifted=result["drifted"],
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
    skipped: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for endpoint, reason, n in counts.skipped:
        skipped[endpoint].append((reason, int(n)))
    endpoints = []
    total = clean_total = raw_clean_total = 0
    for endpoint, samples, raw_clean, noise_samples in counts.windows:
        samples, raw_clean, noise_samples = int(samples), int(raw_clean), int(noise_samples)
        verdicts = []
        found = regressions(
            {path: (raw, noise) for path, _, raw, noise in fields[endpoint]},
            samples,
            noise_samples,
            thresholds,
        )
        for path, kind, raw, noise in fields[endpoint]:
            # A candidate that did not answer is never noise, whatever the thresholds say; nor
            # are fields past the cap (noise of some of them cannot explain the others).
            never_noise = kind == "error" or path == OTHER_FIELDS
            regression = (never_noise and raw > 0) or path in found
            noise_expected = round(expected_noise(noise, noise_samples, samples), 1)
            verdicts.append(FieldSummary(path, kind, raw, noise_expected, regression))
        regressed = {f.path for f in verdicts if f.regression}
        mismatched = sum(
            n
            for sig, n in signatures[endpoint]
            if sig == OVERFLOW or (sig and regressed.intersection(sig.split("\n")))
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
                skipped=tuple(sorted(skipped[endpoint])),
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
        skipped=sum(n for e in endpoints for _, n in e.skipped),
        primary_answered=sum(n for e in endpoints for p, _, n in e.statuses if 0 < p < 400),
    )


def summary(
    store: ParityStore,
    route: str,
    since: float | None = None,
    thresholds: NoiseThresholds = DEFAULT_THRESHOLDS,
    examples: bool = False,
) -> ParitySummary:
    """The parity of `route` since `since` (epoch seconds; default the last hour), read in
    whole minute windows from the first one starting at or after it (the summary's `since`).

    With `examples`, each listed field carries its newest stored example pair.
    """
    since = window_start(time.time() - 3600 if since is None else since)
    latest = store.latest_data(route)
    data = None
    if latest is not None:
        problems = reconcile_problems(latest[1])
        if problems:
            raise StoreError(
                f"{store.shown}: the reconcile result recorded for route {route} is not "
                f"one: {'; '.join(problems)}"
            )
        data = data_parity(*latest)
    result = summarize(route, since, store.counts(route, since), thresholds, data)

    def read(e: EndpointSummary, f: FieldSummary) -> FieldSummary:
        if not examples and f.kind != "error":
            return f
        pair = store.example(route, e.endpoint, f.path)
        detail = _error_of(pair) if f.kind == "error" else ""
        return replace(f, example=pair if examples else None, detail=detail)

    endpoints = tuple(
        replace(e, fields=tuple(read(e, f) for f in e.fields)) for e in result.endpoints
    )
    return replace(result, endpoints=endpoints)


def _error_of(pair: dict[str, Any] | None) -> str:
    """Which side of a stored pair did not answer, and why."""
    for side in ("candidate", "primary"):
        error = (pair or {}).get(side, {}).get("error")
        if error:
            return f"{side}: {error}"
    return ""
