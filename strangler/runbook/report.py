"""A run's status read back from its events: each step, its attempts, its last gate readings."""

from __future__ import annotations

from typing import Any

from strangler.runbook.definition import Runbook
from strangler.runbook.store import Event, Run

DECISIONS = (
    "step_started",
    "action_done",
    "step_passed",
    "step_failed",
    "rolled_back",
    "paused",
    "resumed",
    "bake_restarted",
    "approved",
    "aborted",
    "manual_rollback",
    "run_done",
)


def status(runbook: Runbook, run: Run, events: list[Event]) -> dict[str, Any]:
    """The run and every step: state, attempts, start and end, last gate evaluations."""
    steps = []
    for step in runbook.steps:
        mine = [e for e in events if e.step == step.id]
        started = [e for e in mine if e.kind == "step_started"]
        rounds = [e for e in mine if e.kind == "gates"]
        ended = next((e for e in reversed(mine) if e.kind in ("step_passed", "step_failed")), None)
        if run.step == step.id and run.state != "done":
            state = "failed" if ended and ended.kind == "step_failed" else "current"
            if run.state != "running" and state == "current":
                # paused by a human or a rollback that undid this step, or aborted there
                state = run.state
        elif any(e.kind == "step_passed" for e in mine):
            state = "passed"
        else:
            state = "pending"
        final = ended.data.get("evaluations") if ended else None
        acted = [e for e in mine if e.kind == "action_done"]
        failures = [
            {"attempt": e.attempt, "at": e.at, "why": e.why, "gates": e.data.get("evaluations", [])}
            for e in mine
            if e.kind == "step_failed"
        ]
        steps.append(
            {
                "id": step.id,
                "title": step.title,
                "action": step.action,
                "state": state,
                "attempts": len(started),
                "started_at": started[-1].at if started else None,
                "ended_at": ended.at if ended else None,
                "gates": final
                if final is not None
                else (rounds[-1].data["evaluations"] if rounds else []),
                "evaluations": len(rounds),
                "failures": failures,
                "result": acted[-1].data.get("result", {}) if acted else None,
            }
        )
    return run.summary() | {
        "title": runbook.title,
        "steps": steps,
        "decisions": [e.as_dict() for e in events if e.kind in DECISIONS],
    }


def render(report: dict[str, Any]) -> str:
    """The status as a terminal table with each step's gate lines under it."""
    lines = [
        f"run {report['id']}  {report['runbook']}  {report['state'].upper()}"
        + (f"  ({report['reason']})" if report["reason"] else ""),
        f"params: {', '.join(f'{k}={v}' for k, v in sorted(report['params'].items()))}",
    ]
    if report.get("runner"):
        lines.append(f"runner: {report['runner']}")
    marks = {
        "passed": "ok",
        "failed": "FAIL",
        "paused": "PAUSE",
        "aborted": "ABORT",
        "current": ">>",
        "pending": "..",
    }
    for number, step in enumerate(report["steps"], start=1):
        tries = f" (attempt {step['attempts']})" if step["attempts"] > 1 else ""
        lines.append(
            f"{marks[step['state']]:>5} {number:2}. {step['id']:<15} {step['title']}{tries}"
        )
        if step["action"] == "retire_report" and step["result"]:
            lines += [
                f"             unreachable now: {e}"
                for e in step["result"]["unreachable_endpoints"]
            ]
            lines += [
                f"             still in the monolith: {e}"
                for e in step["result"]["still_served_by_the_monolith"]
                + step["result"]["tasks_still_in_the_monolith"]
            ]
        for gate in step["gates"]:
            lines.append(
                f"             {gate['outcome'].upper():12} {gate['gate']}: {gate['reason']}"
            )
    for decision in report["decisions"]:
        if decision["kind"] in ("rolled_back", "paused", "approved", "aborted", "manual_rollback"):
            lines.append(
                f"  {decision['at']}  {decision['kind']} {decision['step']} by "
                f"{decision['who']}: {decision['why']}"
            )
    return "\n".join(lines)
