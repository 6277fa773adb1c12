"""--check: dependencies that cross declared boundaries without being allowed."""

from __future__ import annotations

from .boundaries import Boundaries


def violations(report: dict, boundaries: Boundaries) -> list[dict]:
    """Dependencies from a context that declares ``depends_on`` to one it does not list."""
    allowed = {c.name: set(c.depends_on) for c in boundaries.contexts if c.depends_on is not None}
    found = []
    for d in report["dependencies"]:
        if d["source"] in allowed and d["target"] not in allowed[d["source"]]:
            found.append(
                {
                    **d,
                    "rule": f"context '{d['source']}' may depend only on: "
                    f"{', '.join(sorted(allowed[d['source']])) or 'nothing'}",
                }
            )
    return found


def render_violations(found: list[dict]) -> str:
    if not found:
        return "No dependency crosses a declared boundary.\n"
    lines = [f"{len(found)} dependencies cross declared boundaries:"]
    for d in found:
        lines.append(
            f"  {d['source']} -> {d['target']} ({d['kind']}, {d['count']} sites): {d['rule']}"
        )
        lines += [f"    {e['file']}:{e['line']}  {e['detail']}" for e in d["evidence"]]
        lines.append(f"    how to cut it: {d['suggestion']}")
    return "\n".join(lines) + "\n"
