"""The parity gate: pass, fail or inconclusive, with one line saying which and why.

Too few samples is inconclusive, and inconclusive is never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from strangler.parity.summary import ParitySummary

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
    (and, with `max_drift`, the latest reconcile found at most that many drifted rows)."""
    where = f"route {summary.route}"
    if summary.samples < min_samples or summary.parity is None:
        return GateResult(
            "inconclusive",
            f"inconclusive: {summary.samples} samples on {where}, {min_samples} needed",
            summary.parity,
            summary.samples,
        )
    if summary.parity < gate:
        worst = min(summary.endpoints, key=lambda e: e.parity if e.parity is not None else 100)
        field = next((f.path for f in worst.fields if f.regression), "")
        detail = f"; worst {worst.endpoint} at {worst.parity:.2f}%" + (
            f" ({field})" if field else ""
        )
        return GateResult(
            "fail",
            f"fail: parity {summary.parity:.2f}% < {gate:.2f}% on {where} "
            f"({summary.samples} samples){detail}",
            summary.parity,
            summary.samples,
        )
    if max_drift is not None:
        if summary.data is None:
            return GateResult(
                "inconclusive",
                f"inconclusive: no reconcile result recorded for {where}",
                summary.parity,
                summary.samples,
            )
        if summary.data.drifted > max_drift:
            return GateResult(
                "fail",
                f"fail: {summary.data.drifted} rows drifted (at most {max_drift}) on {where}",
                summary.parity,
                summary.samples,
            )
    return GateResult(
        "pass",
        f"pass: parity {summary.parity:.2f}% >= {gate:.2f}% on {where} ({summary.samples} samples)",
        summary.parity,
        summary.samples,
    )
