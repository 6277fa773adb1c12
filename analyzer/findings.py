"""What an architect asks of a proposal beyond the partition: hubs, external models, seams.

Pure functions over the partition and the weighted edges; the report lists what they find.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from .project import Edge, Weighted

HUB_MIN_CONTEXTS = 3  # a model related to from this many other contexts is shared reference
SEAMLESS_DENSITY = 0.6  # share of context pairs that depend on each other
SEAMLESS_ICP = 0.4
HUB_SUGGESTION = (
    "shared reference data most contexts need: give it one owner and serve it as a "
    "reference-data service, or replicate a read model into each context via change events"
)
EXTERNAL_SUGGESTION = (
    "a model the project does not define (Django contrib or a package): decide which "
    "context owns it, the others keep its id and read it through that context's API"
)


def _sites(edges: Sequence[Edge], limit: int = 20) -> dict:
    sites = sorted({(e.file, e.line, e.detail) for e in edges})
    return {
        "count": len(sites),
        "evidence": [{"file": f, "line": n, "detail": d} for f, n, d in sites[:limit]],
    }


def shared_references(edges: Sequence[Weighted], parts: Mapping[str, str]) -> list[dict]:
    """Models that models of ``HUB_MIN_CONTEXTS`` or more other contexts relate to."""
    referrers: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
    for s, t, _, edge in edges:
        if edge.kind == "relation" and s in parts and t in parts and parts[s] != parts[t]:
            referrers[t][parts[s]].append(edge)
    return [
        {
            "model": node[6:],
            "context": parts[node],
            "referenced_by": sorted(by),
            **_sites([e for found in by.values() for e in found]),
            "suggestion": HUB_SUGGESTION,
        }
        for node, by in sorted(referrers.items())
        if len(by) >= HUB_MIN_CONTEXTS
    ]


def external_models(external: Sequence[Edge], parts: Mapping[str, str]) -> list[dict]:
    """Each model the project uses but does not define, with the contexts that use it."""
    by_model: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
    for edge in external:
        context = parts.get(edge.source, "")
        by_model[edge.target.partition(":")[2]][context].append(edge)
    return [
        {
            "model": model,
            "used_by": [
                {"context": c, "kinds": sorted({e.kind for e in found}), **_sites(found)}
                for c, found in sorted(by.items())
            ],
            "suggestion": EXTERNAL_SUGGESTION,
        }
        for model, by in sorted(by_model.items())
    ]


def seams(dependencies: Sequence[dict], owners: Sequence[str], icp: float) -> dict:
    """Whether the proposal has clean seams, with the figures that say so."""
    k = len(owners)
    linked = {(d["source"], d["target"]) for d in dependencies}
    pairs = sum(1 for a in owners for b in owners if a != b and (a, b) in linked)
    density = round(pairs / (k * (k - 1)), 3) if k > 1 else 0.0
    clean = density < SEAMLESS_DENSITY and icp < SEAMLESS_ICP
    figures = (
        f"{pairs} of {k * (k - 1)} ordered pairs of the {k} data-owning contexts depend on "
        f"each other (density {density:g}); {icp:.0%} of the dependency weight crosses "
        f"contexts (ICP {icp:.3f})"
    )
    if clean:
        message = f"Seams: {figures}."
    else:
        message = (
            f"No clean seams: {figures}. Every cut below is expensive; treat this partition "
            "as a starting point for the discussion, not as a plan."
        )
    return {"clean": clean, "density": density, "icp": icp, "message": message}
