"""--check: dependencies that cross declared boundaries, and files the check could not read.

A gate with no false passes: omnipresent units answer for their crossings from their home
context, a file that does not parse fails the check (its dependencies are unknown) unless
the user excludes it, and so does code that only clustering placed in a checked context (a new
app, a module outside every app): where it belongs is a decision for the file, not the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .boundaries import Boundaries
from .render import left_out


@dataclass(frozen=True)
class CheckResult:
    violations: list[dict]
    parse_errors: list[dict]
    unpinned: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # paths the walk left out, and why

    @property
    def failed(self) -> bool:
        return bool(self.violations or self.parse_errors or self.unpinned)

    def as_json(self) -> dict:
        return {
            "violations": self.violations,
            "parse_errors": self.parse_errors,
            "unpinned": self.unpinned,
            "skipped": self.skipped,
        }


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


def unchecked(report: dict, boundaries: Boundaries) -> list[dict]:
    """Models and modules no pin places, in a context whose dependencies are checked, or in a
    context the file does not name when it checks every one it names (as a lock does).

    Clustering chose their context, so their dependencies on it were never judged: a new app
    joining the context it uses most would pass a locked gate with any crossing.
    """
    named = {c.name for c in boundaries.contexts}
    gated = {c.name for c in boundaries.contexts if c.depends_on is not None}
    every_one_gated = bool(named) and gated == named
    found = []
    for context, loose in sorted(report.get("unpinned", {}).items()):
        if context in gated or (every_one_gated and context not in named):
            found.append({"context": context, "new_context": context not in named, **loose})
    return found


def check(report: dict, boundaries: Boundaries) -> CheckResult:
    return CheckResult(
        violations(report, boundaries),
        list(report["stats"]["parse_errors"]),
        unchecked(report, boundaries),
        list(report["stats"].get("skipped", [])),
    )


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
    if result.unpinned:
        lines.append(
            "Code that no pin places, so its dependencies are not checked (pin it: its app "
            "under a context's apps, a module under modules; or lock again after reviewing):"
        )
    for u in result.unpinned:
        where = (
            f"a context the file does not name ('{u['context']}')"
            if u["new_context"]
            else f"context '{u['context']}'"
        )
        items = [*(f"model {m}" for m in u["models"]), *(f"module {m}" for m in u["modules"])]
        shown = ", ".join(items[:10]) + (f" and {len(items) - 10} more" if len(items) > 10 else "")
        lines.append(f"  clustered into {where}: {shown}")
    if result.violations:
        lines.append(f"{len(result.violations)} dependencies cross declared boundaries:")
    for d in result.violations:
        via = f" via omnipresent {d['via']}" if "via" in d else ""
        lines.append(
            f"  {d['source']} -> {d['target']} ({d['kind']}, {d['count']} sites){via}: {d['rule']}"
        )
        lines += [f"    {e['file']}:{e['line']}  {e['detail']}" for e in d["evidence"]]
        lines.append(f"    how to cut it: {d['suggestion']}")
    if result.skipped:
        lines.append(f"Not checked, left out (paths in --json): {left_out(result.skipped)}.")
    if not result.failed:
        return "\n".join(["No dependency crosses a declared boundary.", *lines]) + "\n"
    return "\n".join(lines) + "\n"
