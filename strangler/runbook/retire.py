"""The retire report: what of the monolith a retired route leaves unreachable, and what remains.

Built from the analyzer's endpoint map of the monolith's source. The analyzer records URL
patterns relative to their include(), so an endpoint is taken to be behind the route when its
first path segment is the last segment of the route's prefix (or the whole prefix contains it).
"""

from __future__ import annotations

from typing import Any

from strangler.runbook.sources import Environment, SourceError, route_and_backends


def behind(prefix: str, endpoint_route: str) -> bool:
    """Whether an analyzer endpoint (relative pattern) is served under the route's prefix."""
    pattern = endpoint_route.strip("/")
    if not pattern or not prefix:
        return False
    head = pattern.split("/", 1)[0]
    return prefix.rstrip("/").endswith("/" + head) or pattern in prefix


def summarize(report: dict[str, Any], prefix: str, tables: list[str]) -> dict[str, Any]:
    """Pure part: unreachable endpoints, what else the owning contexts still serve and run."""
    owners = [c for c in report["contexts"] if set(tables) & set(c.get("tables", ()))]
    endpoints = [e for c in report["contexts"] for e in c["endpoints"]]
    gone = sorted(e for e in endpoints if behind(prefix, e.split(" -> ", 1)[0]))
    remaining = sorted(e for c in owners for e in c["endpoints"] if e not in gone)
    return {
        "unreachable_endpoints": gone,
        "contexts": [c["name"] for c in owners],
        "still_served_by_the_monolith": remaining,
        "tasks_still_in_the_monolith": sorted(t for c in owners for t in c["tasks"]),
        "capture_triggers": sorted(tables),
    }


def report(env: Environment, route_id: str, tables: list[str]) -> dict[str, Any]:
    """Analyze the monolith's source (nothing imported or run) and summarize for the route."""
    if not env.monolith_source:
        raise SourceError("retire_report needs --monolith-source PATH (the monolith's code)")
    from strangler_analyzer.api import AnalyzeError, Options, analyze

    route, _, _ = route_and_backends(env, route_id)
    try:
        outcome = analyze(Options(path=env.monolith_source, jobs=1))
    except AnalyzeError as error:
        raise SourceError(f"analyzing {env.monolith_source} failed: {error}") from error
    prefix = route.prefix or route.regex
    return {"route": route_id, "prefix": prefix} | summarize(outcome.report, prefix, tables)
