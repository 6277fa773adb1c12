"""The parity gate: pass, fail or inconclusive, with one line saying which and why.

Too few samples is inconclusive, and inconclusive is never a pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from strangler.parity.summary import ParitySummary, shown_percent

Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class GateResult:
    outcome: Outcome
    line: str
    parity: float | None
    samples: int

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


def evaluate_gate(
    summary: ParitySummary, gate: float, min_samples: int, max_drift: int | None = None
) -> GateResult:
    """Pass when at least `min_samples` comparisons show noise-cancelled parity >= `gate` %
    (and, with `max_drift`, the latest reconcile found at most that many drifted rows).

    Exchanges that could not be compared count as unknowns: a pass needs the parity to hold
    even if every one of them differed. A window where the primary never answered below 400
    compared nothing a user gets (the same 4xx on both sides is not parity): inconclusive.
    ValueError when `gate` is not a percentage (a NaN one would pass anything).
    """
    if not 0 <= gate <= 100:
        raise ValueError(f"gate {gate}: a parity percentage from 0 to 100")
    where = f"route {summary.route}"
    not_compared = (
        f"; {summary.skipped} not compared ({_reasons(summary)})" if summary.skipped else ""
    )

    def result(outcome: Outcome, line: str) -> GateResult:
        return GateResult(outcome, line, summary.parity, summary.samples)

    if summary.samples < min_samples or summary.parity is None:
        return result(
            "inconclusive",
            f"inconclusive: {summary.samples} samples on {where}, {min_samples} needed"
            + not_compared,
        )
    if not summary.primary_answered:
        return result(
            "inconclusive",
            f"inconclusive: the primary answered none of the {summary.samples} samples on "
            f"{where} below 400, so nothing a user gets was compared",
        )
    if summary.parity < gate:
        worst = min(summary.endpoints, key=lambda e: e.parity if e.parity is not None else 100)
        field = next((f.path for f in worst.fields if f.regression), "")
        detail = f"; worst {worst.endpoint} at {shown_percent(worst.parity)}" + (
            f" ({field})" if field else ""
        )
        return result(
            "fail",
            f"fail: parity {shown_percent(summary.parity)} < {gate:.2f}% on {where} "
            f"({summary.samples} samples){detail}",
        )
    if summary.skipped:
        floor = summary.parity * summary.samples / (summary.samples + summary.skipped)
        if floor < gate:
            return result(
                "inconclusive",
                f"inconclusive: parity {shown_percent(summary.parity)} on {where} "
                f"({summary.samples} samples), but {summary.skipped} exchanges were not "
                f"compared ({_reasons(summary)}): {shown_percent(floor)} if they all differed, "
                f"< {gate:.2f}%",
            )
    if max_drift is not None:
        if summary.data is None:
            return result("inconclusive", f"inconclusive: no reconcile result recorded for {where}")
        if summary.data.drifted > max_drift:
            return result(
                "fail",
                f"fail: {summary.data.drifted} rows drifted (at most {max_drift}) on {where}",
            )
    return result(
        "pass",
        f"pass: parity {shown_percent(summary.parity)} >= {gate:.2f}% on {where} "
        f"({summary.samples} samples{not_compared})",
    )


def _reasons(summary: ParitySummary) -> str:
    counts: Counter[str] = Counter()
    for e in summary.endpoints:
        for reason, n in e.skipped:
            counts[reason] += n
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
