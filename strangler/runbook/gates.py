"""Gates: pure functions from readings to pass, fail or inconclusive, with what they read.

No data is not zero: a missing series, a NaN, zero traffic or fewer samples than the gate's
minimum is "inconclusive", never a pass. Every evaluation carries its readings, their source,
the threshold and the sample counts, so `status` can show why a step moved or did not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["pass", "fail", "inconclusive"]
# How far below 0 a change's age may read before the clock that measured it is not trusted
# (a database's clock that NTP slews, the rounding of ms): an age of -30 s is a backlog that
# would pass any max_seconds while nobody knows how old it is.
CLOCK_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Traffic:
    """One backend's share of a route over the gate's window; None = the source had no data."""

    requests: float | None
    errors: float | None
    p99: float | None = None  # seconds, at the gate's quantile


@dataclass(frozen=True)
class Evaluation:
    """One gate evaluation: the verdict and everything it was based on."""

    gate: str
    outcome: Outcome
    reason: str
    source: str
    threshold: str
    readings: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One human line: verdict, gate, reason (which names readings and threshold)."""
        return f"{self.outcome.upper():12} {self.gate}: {self.reason}"


def known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


Verdict = Callable[[Outcome, str], Evaluation]


def _verdict(
    gate: str, source: str, threshold: str, readings: dict[str, Any], samples: dict[str, int]
) -> Verdict:
    """A gate's Evaluation from an outcome and a reason, the rest fixed (the readings dict is
    the gate's own: what it adds later is in the evaluation)."""
    return lambda outcome, reason: Evaluation(
        gate, outcome, reason, source, threshold, readings, samples
    )


def _traffic_readings(service: Traffic, monolith: Traffic) -> dict[str, Any]:
    return {"service": asdict(service), "monolith": asdict(monolith)}


def _samples(service: Traffic, monolith: Traffic) -> dict[str, int]:
    return {
        "service_requests": int(service.requests or 0) if known(service.requests) else 0,
        "monolith_requests": int(monolith.requests or 0) if known(monolith.requests) else 0,
    }


def _enough(service: Traffic, monolith: Traffic, min_requests: int) -> str:
    """Why the traffic cannot decide yet ('' when it can)."""
    for name, side in (("service", service), ("monolith", monolith)):
        if not known(side.requests) or not known(side.errors):
            return f"no {name} request data"
        assert side.requests is not None
        if side.requests < min_requests:
            return f"{name} served {side.requests:.0f} requests, fewer than {min_requests}"
    return ""


def error_rate(
    service: Traffic, monolith: Traffic, max_delta: float, min_requests: int, source: str
) -> Evaluation:
    """Service error rate <= monolith error rate + max_delta, each side >= min_requests."""
    threshold = f"service <= monolith + {max_delta:g}, >= {min_requests} requests each"
    readings = _traffic_readings(service, monolith)
    verdict = _verdict("error_rate", source, threshold, readings, _samples(service, monolith))
    missing = _enough(service, monolith, min_requests)
    if missing:
        return verdict("inconclusive", missing)
    assert service.errors is not None and service.requests is not None
    assert monolith.errors is not None and monolith.requests is not None
    ours, theirs = service.errors / service.requests, monolith.errors / monolith.requests
    readings |= {"service_rate": ours, "monolith_rate": theirs}
    return verdict(
        "pass" if ours <= theirs + max_delta else "fail",
        f"service {ours:.2%} ({service.errors:.0f}/{service.requests:.0f}) vs monolith "
        f"{theirs:.2%} ({monolith.errors:.0f}/{monolith.requests:.0f}), "
        f"allowed +{max_delta:.2%}",
    )


def service_error_rate(
    service: Traffic, max_rate: float, min_requests: int, source: str
) -> Evaluation:
    """Service error rate <= max_rate over >= min_requests: for full traffic, when the
    monolith serves nothing to compare with."""
    threshold = f"service errors <= {max_rate:g} of >= {min_requests} requests"
    readings: dict[str, Any] = {"service": asdict(service)}
    samples = {"service_requests": int(service.requests or 0) if known(service.requests) else 0}
    verdict = _verdict("service_error_rate", source, threshold, readings, samples)
    if not known(service.requests) or not known(service.errors):
        return verdict("inconclusive", "no service request data")
    assert service.requests is not None and service.errors is not None
    if service.requests < min_requests:
        return verdict(
            "inconclusive",
            f"service served {service.requests:.0f} requests, fewer than {min_requests}",
        )
    rate = service.errors / service.requests
    readings["service_rate"] = rate
    return verdict(
        "pass" if rate <= max_rate else "fail",
        f"service {rate:.2%} ({service.errors:.0f}/{service.requests:.0f}), allowed {max_rate:.2%}",
    )


def latency_ratio(
    service: Traffic, monolith: Traffic, max_ratio: float, min_requests: int, source: str
) -> Evaluation:
    """Service p99 / monolith p99 <= max_ratio; a zero or missing baseline decides nothing."""
    threshold = f"service p99 / monolith p99 <= {max_ratio:g}, >= {min_requests} requests each"
    readings = _traffic_readings(service, monolith)
    verdict = _verdict("latency_ratio", source, threshold, readings, _samples(service, monolith))
    missing = _enough(service, monolith, min_requests)
    if not missing and not (known(service.p99) and known(monolith.p99)):
        missing = "no latency quantile (empty histogram)"
    if not missing and not monolith.p99:
        missing = "monolith p99 is 0: no baseline to compare with"
    if missing:
        return verdict("inconclusive", missing)
    assert service.p99 is not None and monolith.p99 is not None
    ratio = service.p99 / monolith.p99
    readings["ratio"] = ratio
    return verdict(
        "pass" if ratio <= max_ratio else "fail",
        f"p99 service {service.p99 * 1000:.1f} ms / monolith {monolith.p99 * 1000:.1f} ms "
        f"= {ratio:.2f}, allowed {max_ratio:g}",
    )


def traffic_on_monolith(
    service: Traffic, monolith: Traffic, min_requests: int, source: str
) -> Evaluation:
    """After a rollback: the monolith serves the route (>= min_requests) and the service none."""
    threshold = f"service 0 requests, monolith >= {min_requests}"
    readings, samples = _traffic_readings(service, monolith), _samples(service, monolith)
    verdict = _verdict("traffic_on_monolith", source, threshold, readings, samples)
    if not known(service.requests) or not known(monolith.requests):
        return verdict("inconclusive", "no request data")
    assert service.requests is not None and monolith.requests is not None
    if service.requests > 0:
        return verdict("fail", f"the service still served {service.requests:.0f} requests")
    if monolith.requests < min_requests:
        return verdict(
            "inconclusive",
            f"monolith served {monolith.requests:.0f} requests, fewer than {min_requests}",
        )
    return verdict("pass", f"monolith served {monolith.requests:.0f} requests, the service none")


def breaker_closed(state: float | None, backend: str, source: str) -> Evaluation:
    """The service backend's breaker is closed on every replica (0); half-open or open fails."""
    threshold = "breaker state 0 (closed) on every replica"
    readings = {"backend": backend, "state": state}
    if not known(state):
        return Evaluation(
            "breaker_closed",
            "inconclusive",
            f"no breaker state for {backend}",
            source,
            threshold,
            readings,
        )
    names = {0: "closed", 1: "half-open", 2: "open"}
    assert state is not None
    outcome: Outcome = "pass" if state == 0 else "fail"
    return Evaluation(
        "breaker_closed",
        outcome,
        f"breaker of {backend} is {names.get(int(state), state)}",
        source,
        threshold,
        readings,
    )


def service_healthy(status: int | None, detail: str, url: str) -> Evaluation:
    """The service answers its health path with a 2xx; no answer yet is inconclusive.

    Only 2xx: a 404 is a health path the service does not serve (the wrong service, or a
    route table pointing elsewhere) and a redirect is some other server's answer (a login
    page, a load balancer), neither is this service saying it is healthy."""
    threshold = "health answer 2xx"
    readings = {"url": url, "status": status, "detail": detail}
    if status is None:
        return Evaluation(
            "service_healthy",
            "inconclusive",
            f"no answer from {url}: {detail}",
            url,
            threshold,
            readings,
        )
    outcome: Outcome = "pass" if 200 <= status < 300 else "fail"
    return Evaluation(
        "service_healthy", outcome, f"{url} answered {status}", url, threshold, readings
    )


def cdc_lag(
    oldest_s: float | None,
    pending: int | None,
    max_seconds: float,
    source: str,
    backlog: int | None = None,
) -> Evaluation:
    """The oldest change the service has not applied yet (published or not) is younger than
    max_seconds: the relay's lag and the consumer's together (a consumer that stopped leaves
    the outbox drained, so the outbox alone is not the lag). The age is the capturing
    database's own (its clock now minus the one that dated the row); one below 0 by more
    than CLOCK_TOLERANCE_S is no reading, never an age of 0."""
    threshold = f"oldest change not applied in the service <= {max_seconds:g} s"
    readings = {
        "oldest_unapplied_seconds": oldest_s,
        "unapplied": pending,
        "outbox_backlog": backlog,
    }
    if not known(oldest_s) or pending is None:
        return Evaluation(
            "cdc_lag", "inconclusive", "no unapplied-changes status", source, threshold, readings
        )
    assert oldest_s is not None
    if oldest_s < -CLOCK_TOLERANCE_S:
        return Evaluation(
            "cdc_lag",
            "inconclusive",
            f"the oldest of {pending} changes not applied is {-oldest_s:.1f} s in the future of "
            "the clock that measured its age (the capturing database's clock stepped back, or "
            "an older strangler.cdc measured it with another clock): no age to judge; check "
            "the clocks (NTP)",
            source,
            threshold,
            readings,
            {"unapplied": pending},
        )
    outcome: Outcome = "pass" if oldest_s <= max_seconds else "fail"
    return Evaluation(
        "cdc_lag",
        outcome,
        f"{pending} changes not applied in the service ({backlog} of them unpublished), "
        f"oldest {oldest_s:.1f} s, allowed {max_seconds:g} s",
        source,
        threshold,
        readings,
        {"unapplied": pending},
    )


def dead_letters(pending: int | None, parked_keys: int | None, source: str) -> Evaluation:
    """No dead letters pending on the receiving side (a parked key is a row not in sync)."""
    threshold = "0 pending dead letters"
    readings = {"dead_letters": pending, "parked_keys": parked_keys}
    if pending is None:
        return Evaluation(
            "dead_letters", "inconclusive", "no consumer status", source, threshold, readings
        )
    outcome: Outcome = "pass" if pending == 0 else "fail"
    return Evaluation(
        "dead_letters",
        outcome,
        f"{pending} dead letters pending ({parked_keys} keys parked)",
        source,
        threshold,
        readings,
        {"dead_letters": pending},
    )


def drift(report: dict[str, Any] | None, source: str) -> Evaluation:
    """Reconcile found no missing, extra or different rows, and every mapped field is one
    events write; no table compared is no answer."""
    threshold = "0 drifted rows over at least one table, every field compared"
    if report is None or not report.get("tables"):
        return Evaluation(
            "drift",
            "inconclusive",
            "reconcile compared no table",
            source,
            threshold,
            {"report": report},
        )
    tables = report["tables"]
    rows = sum(int(t.get("source_rows", 0)) for t in tables)
    drifted = int(report.get("drifted", 0))
    # Fields no event writes were not compared at all: stale after a column renamed in the
    # source, unless the service owns them (the mapping's `drop` says so).
    uncarried = [
        f"{t.get('model')}.{name}" for t in tables for name in t.get("fields_not_carried") or ()
    ]
    readings = {
        "drifted": drifted,
        "tables": len(tables),
        "source_rows": rows,
        "fields_not_carried": uncarried,
    }
    outcome: Outcome = "pass" if drifted == 0 and not uncarried else "fail"
    reason = f"{drifted} drifted rows; {rows} rows compared in {len(tables)} tables"
    if uncarried:
        reason += (
            f"; no event writes {', '.join(uncarried)} (renamed in the source? map it with "
            "'rename'; owned by the service? list it in the mapping's 'drop')"
        )
    return Evaluation("drift", outcome, reason, source, threshold, readings, {"rows": rows})


def cdc_checks(problems: list[str] | None, source: str) -> Evaluation:
    """Django's system checks of the CDC app report nothing in either project."""
    threshold = "no cdc.E/W messages"
    if problems is None:
        return Evaluation("cdc_checks", "inconclusive", "checks did not run", source, threshold)
    outcome: Outcome = "fail" if problems else "pass"
    reason = "; ".join(problems) if problems else "no problems"
    return Evaluation("cdc_checks", outcome, reason, source, threshold, {"problems": problems})


def boundaries_clean(report: dict[str, Any] | None, source: str) -> Evaluation:
    """`strangler analyze --check`: no dependency crosses a declared boundary, every file
    parsed (a file that does not parse hides its dependencies) and every model and module of a
    checked context is pinned there (clustering alone placing it hides its crossings)."""
    threshold = "0 violations, 0 unparsed files, 0 unpinned contexts"
    if report is None or "violations" not in report:
        return Evaluation(
            "boundaries_clean", "inconclusive", "the check gave no answer", source, threshold
        )
    violations, unparsed = report["violations"], report.get("parse_errors", [])
    unpinned = report.get("unpinned", [])
    readings = {
        "violations": [f"{v['source']} -> {v['target']} {v['kind']}" for v in violations],
        "parse_errors": [f"{e['file']}:{e['line']}" for e in unparsed],
        "unpinned": [
            f"{u['context']}: {', '.join([*u['models'], *u['modules']])}" for u in unpinned
        ],
    }
    outcome: Outcome = "fail" if violations or unparsed or unpinned else "pass"
    first = violations[0]["evidence"][0] if violations else None
    reason = (
        f"{len(violations)} crossings, {len(unparsed)} unparsed files, "
        f"{len(unpinned)} contexts holding unpinned code"
        + (f"; first {first['file']}:{first['line']} {first['detail']}" if first else "")
    )
    return Evaluation(
        "boundaries_clean",
        outcome,
        reason,
        source,
        threshold,
        readings,
        {"violations": len(violations)},
    )


def approval(approved_by: str | None, why: str, source: str) -> Evaluation:
    """A human said go (`strangler runbook approve`); until then the step waits."""
    threshold = "an approval recorded for this step"
    if not approved_by:
        return Evaluation(
            "approval", "inconclusive", "waiting for `strangler runbook approve`", source, threshold
        )
    return Evaluation(
        "approval",
        "pass",
        f"approved by {approved_by}: {why or '(no reason)'}",
        source,
        threshold,
        {"who": approved_by, "why": why},
    )
