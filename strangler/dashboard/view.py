"""The page's data in one JSON document: routes with their traffic, history, replicas, CDC.

A pure function of what the collectors hold, so every panel's numbers are tested without
a browser; the page only draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from strangler.dashboard import traffic
from strangler.dashboard.cdc import CdcReading
from strangler.dashboard.control import TableView
from strangler.dashboard.history import changes, redact
from strangler.dashboard.metrics import Tick
from strangler.dashboard.parity import ParityReading
from strangler.dashboard.runbooks import RunsReading
from strangler.dashboard.scrape import Replica

DEFAULT_ROUTE = "(default)"  # the proxy's route label for paths no route matches
BREAKER = {0: "closed", 1: "half-open", 2: "open"}


@dataclass(frozen=True)
class Sources:
    """Everything the page shows, as the collectors hold it at one moment."""

    table: TableView | None
    table_error: str
    ticks: Sequence[Tick]
    replicas: Sequence[Replica]
    cdc: Sequence[CdcReading]
    reconcile: dict[str, Any] | None
    has_report: bool
    now: float
    runbooks: RunsReading | None = None  # None: no run store configured
    parity: ParityReading | None = None  # None: no parity store configured


def _breakers(replicas: Sequence[Replica]) -> dict[str, str]:
    """Each backend's breaker in its worst state over the replicas that answered."""
    worst: dict[str, int] = {}
    for replica in replicas:
        for backend, state in replica.breakers.items():
            worst[backend] = max(worst.get(backend, 0), state)
    return {backend: BREAKER.get(state, str(state)) for backend, state in worst.items()}


def _route(
    entry: dict[str, Any], counts: traffic.Traffic, breakers: dict[str, str]
) -> dict[str, Any]:
    backends = [entry["monolith"], entry["service"]]
    stats = traffic.backend_stats(counts, entry["id"], backends)
    match = entry.get("prefix") or f"~{entry.get('regex')}"
    return {
        "id": entry["id"],
        "match": match,
        "methods": entry.get("methods", []),
        "host": entry.get("host", ""),
        "state": entry.get("state", ""),
        "weight": entry.get("weight", 0),
        "shadow": (entry.get("shadow") or {}).get("percent"),
        "monolith": entry["monolith"],
        "service": entry["service"],
        "backends": [asdict(s) | {"breaker": breakers.get(s.backend, "closed")} for s in stats],
        "fallbacks": counts.fallbacks.get(entry["id"], {}),
        "shadow_outcomes": counts.shadow.get(entry["id"], {}),
        "series": traffic.series(counts, entry["id"], backends),
    }


def _table(src: Sources) -> dict[str, Any]:
    if src.table is None:
        return {"error": src.table_error, "routes": [], "history": []}
    current = src.table.current
    breakers = _breakers([r for r in src.replicas if r.up])
    default = current.raw["default_backend"]
    counts = traffic.index(src.ticks, src.now)
    return {
        "version": current.number,
        "who": current.who,
        "at": current.at,
        "why": current.why,
        "default_backend": default,
        "routes": [_route(entry, counts, breakers) for entry in current.raw["routes"]],
        "unmatched": asdict(traffic.backend_stats(counts, DEFAULT_ROUTE, [default])[0]),
        "history": [
            {
                "version": v.number,
                "who": v.who,
                "at": v.at,
                "why": v.why,
                "changes": changes(v.before, v.raw),
                "before": redact(v.before),
                "after": redact(v.raw),
            }
            for v in src.table.history
        ],
    }


def state(src: Sources) -> dict[str, Any]:
    """The JSON the page polls: one document, so every panel shows the same moment."""
    return {
        "now": src.now,
        "table": _table(src),
        "replicas": [asdict(r) for r in src.replicas],
        "cdc": {
            "projects": [asdict(r) | {"stale": r.stale(src.now)} for r in src.cdc],
            "reconcile": src.reconcile,
        },
        "report": src.has_report,
        "runbooks": None
        if src.runbooks is None
        else asdict(src.runbooks) | {"stale": src.runbooks.stale(src.now)},
        "parity": None
        if src.parity is None
        else asdict(src.parity) | {"stale": src.parity.stale(src.now)},
    }
