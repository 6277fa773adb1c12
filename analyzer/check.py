"""--check: dependencies that cross declared boundaries, and files the check could not read.

A gate with no false passes: omnipresent units answer for their crossings from their home
context, and a file that does not parse fails the check (its dependencies are unknown) unless
the user excludes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .boundaries import Boundaries


@dataclass(frozen=True)
class CheckResult:
    violations: list[dict]
    parse_errors: list[dict]

    @property
    def failed(self) -> bool:
        return bool(self.violations or self.parse_errors)

    def as_json(self) -> dict:
        return {"violations": self.violations, "parse_errors": self.parse_errors}


def violations(report: dict, boundaries: Boundaries) -> list[dict]:
    """Dependencies from a context that declares ``depends_on`` to one it does not list."""
    allowed = {c.name: set(c.depends_on) for c in boundaries.contexts if c.depends_on is not None}
    crossings = [*report["dependencies"]]
    for unit in report.get("omnipresent", []):
        crossings += [{**d, "via": unit["module"]} for d in unit.get("dependencies", [])]
    found = []
    for d in crossings:
        if d["source"] in allowed and d["target"] not in allowed[d["source"]]:
            found.append(
                {
                    **d,
                    "rule": f"context '{d['source']}' may depend only on: "
                    f"{', '.join(sorted(allowed[d['source']])) or 'nothing'}",
                }
            )
    return found


def check(report: dict, boundaries: Boundaries) -> CheckResult:
    return CheckResult(violations(report, boundaries), list(report["stats"]["parse_errors"]))


def render_check(result: CheckResult) -> str:
    lines = []
    if result.parse_errors:
        count = len(result.parse_errors)
        lines.append(
            (
                "1 file does not parse, so its"
                if count == 1
                else f"{count} files do not parse, so their"
            )
            + " dependencies are unknown (fix them, or --exclude them to check without them):"
        )
        lines += [f"  {e['file']}:{e['line']}  {e['message']}" for e in result.parse_errors]
    if result.violations:
        lines.append(f"{len(result.violations)} dependencies cross declared boundaries:")
    for d in result.violations:
        via = f" via omnipresent {d['via']}" if "via" in d else ""
        lines.append(
            f"  {d['source']} -> {d['target']} ({d['kind']}, {d['count']} sites){via}: {d['rule']}"
        )
        lines += [f"    {e['file']}:{e['line']}  {e['detail']}" for e in d["evidence"]]
        lines.append(f"    how to cut it: {d['suggestion']}")
    if not lines:
        return "No dependency crosses a declared boundary.\n"
    return "\n".join(lines) + "\n"
