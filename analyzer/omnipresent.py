"""Omnipresent code units: modules that use the models of so many apps they belong to none.

Seeders, data-fix commands, admin dashboards and export scripts touch nearly every model. Left
in the graph, such a module lands in one context and every other context looks coupled to it.
Bunch treats these the same way: it detects "omnipresent" modules from their fan-in/fan-out,
clusters without them and shows them apart (Mancoridis, Mitchell, Chen & Gansner, "Bunch: a
clustering tool for the recovery and maintenance of software system structures", ICSM 1999;
Mitchell & Mancoridis, "On the automatic modularization of software systems using the Bunch
tool", IEEE TSE 32(3), 2006). Our fan-out is counted in distinct apps whose models a module
uses, because what makes a unit noise for a boundary proposal is breadth across data owners,
not the number of calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

DEFAULT_MIN_APPS = 6
NOT_MODEL_USE = frozenset({"defines", "same_app"})  # ownership and layout hints, not uses
SUGGESTION = (
    "split it per context when extracting (each part moves with the models it "
    "touches), or keep it out of the services and run it against each service's API"
)


def find_omnipresent(
    edges: Iterable[tuple[str, str, str]],
    model_app: Mapping[str, str],
    definers: frozenset[str],
    min_apps: int,
) -> dict[str, tuple[str, ...]]:
    """Module nodes whose model dependencies span at least ``min_apps`` apps -> those apps.

    ``edges`` are ``(source, target, kind)``; ``model_app`` maps model nodes to their app.
    Modules defining a model are never omnipresent (they move with their models), and
    ``min_apps`` 0 turns detection off.
    """
    if min_apps <= 0:
        return {}
    spans: dict[str, set[str]] = defaultdict(set)
    for source, target, kind in edges:
        if (
            source.startswith("module:")
            and target in model_app
            and kind not in NOT_MODEL_USE
            and source not in definers
        ):
            spans[source].add(model_app[target])
    return {
        module: tuple(sorted(apps))
        for module, apps in sorted(spans.items())
        if len(apps) >= min_apps
    }
