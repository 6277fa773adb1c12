"""From a resolved project to the report: graph, partition, dependencies, metrics, order.

The report is a plain dict of the JSON contract (docs/architecture.md), every list sorted so the
same input always gives the same bytes.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import findings, metrics
from .boundaries import Boundaries
from .cluster import cluster
from .omnipresent import NOT_MODEL_USE, SUGGESTION
from .pins import Pins
from .project import Edge, EndpointInfo, Project, Weighted
from .weights import CUT_SUGGESTIONS, EdgeKind

SCHEMA_VERSION = 1
EVIDENCE_LIMIT = 20
PROJECT_PART = "(project)"
API_ROOTS = ("api", "v1", "v2", "graphql", "dashboard")  # prefixes that name no capability


def weighted_edges(
    project: Project, weights: Mapping[EdgeKind, float], extra: tuple[Edge, ...] = ()
) -> list[Weighted]:
    """Every node-to-node edge with its weight; app-level (migration) edges are left out.

    The imports of one module from another weigh one import together, however they are
    written (one statement per name, or one for all): weights do not depend on formatting.
    """
    kept = [
        e
        for e in (*project.edges, *extra)
        if not e.source.startswith("app:") and e.source != e.target
    ]
    imports = Counter((e.source, e.target) for e in kept if e.kind == "import")
    result = []
    for edge in kept:
        share = 1 / imports[(edge.source, edge.target)] if edge.kind == "import" else 1.0
        weight = weights.get(edge.kind, 0.0) * edge.scale * share
        if weight > 0:
            result.append(Weighted(edge.source, edge.target, weight, edge))
    return result


def baseline_parts(project: Project, nodes: list[str]) -> dict[str, str]:
    """The layout the team already has: one part per Django app (app-less code together)."""
    model_app = {f"model:{m.key}": m.app for m in project.models}
    parts = {}
    for node in nodes:
        if node in model_app:
            parts[node] = model_app[node]
        else:
            parts[node] = project.module_app.get(node[7:], "") or PROJECT_PART
    return parts


def propose(
    project: Project,
    edges: list[Weighted],
    pins: Pins,
    boundaries: Boundaries,
    loose: Sequence[str] = (),
) -> dict[str, str]:
    """Node -> context name for the proposal, honouring boundaries.toml.

    Every model, every node of ``edges`` and the ``loose`` nodes (linked to nothing
    clustered) are placed.
    """
    nodes = sorted(
        {f"model:{m.key}" for m in project.models}
        | {e[0] for e in edges}
        | {e[1] for e in edges}
        | set(loose)
    )
    node_set = set(nodes)
    undirected: dict[tuple[str, str], float] = defaultdict(float)
    for s, t, w, _ in edges:
        undirected[(s, t) if s < t else (t, s)] += w

    def present(group: tuple[str, ...]) -> list[str]:
        return [n for n in group if n in node_set]

    pinned = {name: present(group) for name, group in pins.contexts.items()}
    assignment = cluster(
        nodes,
        undirected,
        together=[present(g) for g in pins.together],
        pins=pinned,
        apart=[(present(a), present(b)) for a, b in pins.apart],
        target=boundaries.target,
        resolution=boundaries.resolution,
        seed=boundaries.seed,
        anchors=frozenset(f"model:{m.key}" for m in project.models),
    )
    return name_contexts(project, assignment, pinned, undirected)


def resolution_row(
    project: Project,
    edges: list[Weighted],
    parts: Mapping[str, str],
    resolution: float,
) -> dict:
    """How many contexts one Louvain resolution gives, and their quality metrics."""
    summary = metrics.summary(
        [(s, t, w) for s, t, w, _ in edges if s in parts and t in parts], parts
    )
    owners = {parts[f"model:{m.key}"] for m in project.models if f"model:{m.key}" in parts}
    return {"resolution": resolution, "data_owning_contexts": len(owners), **summary}


def name_contexts(
    project: Project,
    assignment: Mapping[str, int],
    pins: Mapping[str, list[str]],
    weights: Mapping[tuple[str, str], float],
) -> dict[str, str]:
    """Name each community after its pin, else its dominant app, else its dominant module.

    When one app dominates several communities, the one holding most of its models keeps the
    app's name and each other is named after its central model (``projects-membership``),
    the model with the most weight inside it: a name that says what the context is about.
    """
    members: dict[int, list[str]] = defaultdict(list)
    for node, community in assignment.items():
        members[community].append(node)
    model_app = {f"model:{m.key}": m.app for m in project.models}
    pin_of = {n: name for name, group in pins.items() for n in group}
    names: dict[int, str] = {}
    share: dict[int, int] = {}
    for community in sorted(members):
        nodes = sorted(members[community])
        pinned = sorted({pin_of[n] for n in nodes if n in pin_of})
        if pinned:
            names[community], share[community] = pinned[0], len(nodes) + 10**9
            continue
        apps = Counter(model_app[n] for n in nodes if n in model_app) or Counter({"shared": 0})
        names[community], share[community] = min(apps.items(), key=lambda kv: (-kv[1], kv[0]))
    holders: dict[str, list[int]] = defaultdict(list)
    for community, name in names.items():
        holders[name].append(community)
    result = {}
    used = set(names.values())
    for name, communities in sorted(holders.items()):
        ranked = sorted(communities, key=lambda c: (-share[c], c))
        for rank, community in enumerate(ranked):
            label = name
            if rank:
                label = _central_name(name, members[community], model_app, weights, used)
                used.add(label)
            for node in members[community]:
                result[node] = label
    return result


def _central_name(
    app: str,
    nodes: list[str],
    model_app: Mapping[str, str],
    weights: Mapping[tuple[str, str], float],
    used: set[str],
) -> str:
    """``app-model`` after the community's most connected model of ``app``; unique."""
    inside = set(nodes)
    degree: dict[str, float] = defaultdict(float)
    for (a, b), w in weights.items():
        if a in inside and b in inside:
            degree[a] += w
            degree[b] += w
    models = [n for n in sorted(nodes) if model_app.get(n) == app] or sorted(nodes)
    central = max(models, key=lambda n: (degree[n], n == models[0]))
    base = f"{app}-{central.rpartition('.')[2].rpartition(':')[2].lower()}"
    label, count = base, 1
    while label in used:
        count += 1
        label = f"{base}-{count}"
    return label


def _context_of_app(project: Project, parts: Mapping[str, str]) -> dict[str, str]:
    by_app: dict[str, Counter[str]] = defaultdict(Counter)
    for m in project.models:
        if f"model:{m.key}" in parts:
            by_app[m.app][parts[f"model:{m.key}"]] += 1
    return {
        app: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for app, c in by_app.items()
    }


def _crossing(
    edges: list[Weighted], parts: Mapping[str, str]
) -> dict[tuple[str, str, EdgeKind], list[tuple[float, Edge]]]:
    """Edges between two parts, grouped by (source part, target part, kind)."""
    grouped: dict[tuple[str, str, EdgeKind], list[tuple[float, Edge]]] = defaultdict(list)
    for s, t, w, edge in edges:
        if s in parts and t in parts and parts[s] != parts[t]:
            grouped[(parts[s], parts[t], edge.kind)].append((w, edge))
    return grouped


def _grouped(grouped: Mapping[tuple[str, str, EdgeKind], list[tuple[float, Edge]]]) -> list[dict]:
    return [
        {
            "source": source,
            "target": target,
            "kind": kind,
            **_evidence(found),
            "suggestion": CUT_SUGGESTIONS.get(kind, ""),
        }
        for (source, target, kind), found in sorted(grouped.items())
    ]


def dependencies(
    project: Project,
    edges: list[Weighted],
    parts: Mapping[str, str],
    migration_weight: float,
) -> list[dict]:
    """Crossing edges grouped by (source context, target context, kind), with evidence."""
    grouped = _crossing(edges, parts)
    app_context = _context_of_app(project, parts)
    for edge in project.edges:
        if edge.kind == "migration":
            a, b = app_context.get(edge.source[4:]), app_context.get(edge.target[4:])
            if a and b and a != b:
                grouped[(a, b, "migration")].append((migration_weight, edge))
    return _grouped(grouped)


def omnipresent_homes(
    project: Project,
    parts: Mapping[str, str],
    omnipresent: Mapping[str, tuple[str, ...]],
    pins: Pins,
) -> dict[str, str]:
    """The context that answers for each omnipresent unit under --check: its pin, else its app's.

    Omnipresence keeps a unit out of the clustering; it never exempts it from a declared
    boundary. A unit outside every app and pin has no home ("").
    """
    app_context = _context_of_app(project, parts)
    return {
        node: pins.context_of(node) or app_context.get(project.module_app.get(node[7:], ""), "")
        for node in omnipresent
    }


def _evidence(found: list[tuple[float, Edge]]) -> dict:
    """Total weight, number of distinct sites, and the first ``EVIDENCE_LIMIT`` of them."""
    sites = sorted({(e.file, e.line, e.detail) for _, e in found})
    return {
        "weight": round(sum(w for w, _ in found), 4),
        "count": len(sites),
        "evidence": [
            {"file": f, "line": line, "detail": d} for f, line, d in sites[:EVIDENCE_LIMIT]
        ],
    }


def omnipresent_units(
    project: Project,
    edges: list[Weighted],
    parts: Mapping[str, str],
    omnipresent: Mapping[str, tuple[str, ...]],
    homes: Mapping[str, str],
) -> list[dict]:
    """Each omnipresent unit with the contexts whose models it uses, and the evidence.

    ``dependencies`` are the unit's crossings seen from its home context, for --check.
    """
    placed = {**parts, **{n: h for n, h in homes.items() if h}}
    touched: dict[str, dict[str, list[tuple[float, Edge]]]] = defaultdict(lambda: defaultdict(list))
    for s, t, w, edge in edges:
        if s in omnipresent and t.startswith("model:") and edge.kind not in NOT_MODEL_USE:
            touched[s][parts[t]].append((w, edge))
    result = []
    for node, apps in sorted(omnipresent.items()):
        module = node[7:]
        contexts = [
            {
                "context": context,
                "models": sorted({e.target[6:] for _, e in found}),
                "kinds": sorted({e.kind for _, e in found}),
                **_evidence(found),
            }
            for context, found in sorted(touched[node].items())
        ]
        result.append(
            {
                "module": module,
                "file": project.module_paths.get(module, ""),
                "app": project.module_app.get(module, ""),
                "apps": list(apps),
                "contexts": contexts,
                "count": sum(c["count"] for c in contexts),
                "endpoints": sorted(
                    {_endpoint_label(e) for e in project.endpoints if e.module == module}
                ),
                "tasks": sorted(q for q, m in project.tasks if m == module),
                "suggestion": SUGGESTION,
                "context": homes.get(node, ""),
                "dependencies": _grouped(
                    _crossing([e for e in edges if node in (e[0], e[1])], placed)
                ),
            }
        )
    return result


def extraction_order(
    context_names: list[str],
    deps: list[dict],
    shared: Mapping[str, int],
    dataless: frozenset[str] = frozenset(),
) -> list[dict]:
    """Contexts easiest-first: lightest inbound dependencies, fewest shared tables.

    Contexts owning no model come last: shared code is not a service to extract.
    """
    rows = []
    for name in context_names:
        inbound = [d for d in deps if d["target"] == name]
        outbound = [d for d in deps if d["source"] == name]
        in_weight = round(sum(d["weight"] for d in inbound), 4)
        out_weight = round(sum(d["weight"] for d in outbound), 4)
        callers = sorted({d["source"] for d in inbound})
        reason = (
            f"{len(inbound)} inbound dependencies (weight {in_weight:g})"
            + (f" from {', '.join(callers)}" if callers else "")
            + f"; {shared.get(name, 0)} shared tables; {len(outbound)} outbound "
            f"(weight {out_weight:g}) to cut or turn into API calls and events"
        )
        if name in dataless:
            reason = "owns no model: shared code to copy or publish as a library, not a service"
        rows.append(
            (
                name in dataless,
                in_weight,
                len(inbound),
                shared.get(name, 0),
                out_weight,
                name,
                reason,
            )
        )
    rows.sort()
    return [
        {
            "rank": i + 1,
            "context": name,
            "inbound_weight": iw,
            "inbound": n,
            "shared_tables": st,
            "outbound_weight": ow,
            "reason": reason,
        }
        for i, (_, iw, n, st, ow, name, reason) in enumerate(rows)
    ]


def route_prefix(route: str) -> str:
    r"""The literal path prefix a route lives under, as a proxy route would match it.

    ``api/orders/<int:pk>/`` -> ``/api/orders/``; ``^shop/(?P<pk>\d+)/$`` -> ``/shop/``; the
    first segment, or the first two under ``api``-like roots.
    """
    literal = re.split(r"[<(\[?*+$\\]", route.lstrip("^"), maxsplit=1)[0]
    segments = [s for s in literal.split("/") if s]
    depth = 2 if segments[:1] and segments[0] in API_ROOTS else 1
    kept = segments[:depth]
    slash = "/" if kept and (len(segments) > len(kept) or literal.endswith("/")) else ""
    return "/" + "/".join(kept) + slash


def _endpoint_label(e: EndpointInfo) -> str:
    return f"{e.route} -> {e.view}" + (f" ({', '.join(e.models)})" if e.models else "")


@dataclass(frozen=True)
class Placement:
    """Where every node went: its context, or set aside as omnipresent, wiring or kernel."""

    parts: Mapping[str, str]  # node -> context (kernel modules included, as shared-kernel)
    omnipresent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # -> its apps
    wiring: frozenset[str] = frozenset()
    kernel: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # -> importing apps
    pins: Pins = field(default_factory=lambda: Pins({}, (), ()))


def build_report(
    project: Project,
    placement: Placement,
    edges: list[Weighted],
    stats: dict,
    options: dict,
    project_name: str,
) -> dict:
    """Assemble the JSON-contract report for one partition (``options`` carries weights).

    Omnipresent units and wiring are in no context: their edges are neither dependencies nor
    part of the metrics, which proposal and baseline both compute on the graph without them.
    """
    parts, omnipresent, kernel = placement.parts, placement.omnipresent, placement.kernel
    aside = set(omnipresent) | placement.wiring
    graph = [e for e in edges if e[0] not in aside and e[1] not in aside and e[0] in parts]
    graph = [e for e in graph if e[1] in parts]
    nodes = sorted(parts)
    triples = [(s, t, w) for s, t, w, _ in graph]
    baseline = baseline_parts(project, nodes)
    deps = dependencies(project, graph, parts, options.get("weights", {}).get("migration", 0.0))
    per_part = metrics.part_metrics(triples, parts)
    models_by_node = {f"model:{m.key}": m for m in project.models}
    shared: Counter[str] = Counter()
    for d in deps:
        if d["kind"] in ("shared_table", "raw_sql"):
            shared[d["target"]] += d["count"]
    contexts: list[dict] = []
    pinned = {n for group in placement.pins.contexts.values() for n in group}
    unpinned: dict[str, dict[str, list[str]]] = {}
    for name in sorted(set(parts.values())):
        members = [n for n in nodes if parts[n] == name]
        loose = [n for n in members if n not in pinned]
        if placement.pins.contexts and loose:
            unpinned[name] = {
                "models": sorted(n[6:] for n in loose if n.startswith("model:")),
                "modules": sorted(n[7:] for n in loose if n.startswith("module:")),
            }
        models = [models_by_node[n] for n in members if n in models_by_node]
        modules = sorted(n[7:] for n in members if n.startswith("module:"))
        module_set = set(modules)
        apps = sorted(
            {m.app for m in models}
            | {project.module_app[m] for m in modules if project.module_app.get(m)}
        )
        contexts.append(
            {
                "name": name,
                "apps": apps,
                "models": sorted(m.key for m in models),
                "modules": modules,
                "endpoints": sorted(
                    {_endpoint_label(e) for e in project.endpoints if e.module in module_set}
                ),
                "tasks": sorted(q for q, module in project.tasks if module in module_set),
                "tables": sorted({m.table for m in models}),
                "url_prefixes": sorted(
                    {route_prefix(e.route) for e in project.endpoints if e.module in module_set}
                ),
                "metrics": per_part[name],
            }
        )
    summary = metrics.summary(triples, parts)
    return {
        "schema_version": SCHEMA_VERSION,
        "project": {
            "name": project_name,
            "apps": [
                {"label": a.label, "name": a.name, "installed": a.installed} for a in project.apps
            ],
            "settings": list(project.settings_modules),
        },
        "options": options,
        "stats": stats,
        "contexts": contexts,
        # With a boundaries file: per context, what clustering put there and no pin did.
        "unpinned": unpinned,
        "dependencies": deps,
        "metrics": {
            **summary,
            "baseline": metrics.summary(triples, baseline),
        },
        "baseline": {"contexts": sorted(set(baseline.values()))},
        "extraction_order": extraction_order(
            [c["name"] for c in contexts],
            deps,
            shared,
            frozenset(c["name"] for c in contexts if not c["models"]),
        ),
        "shared_reference": findings.shared_references(graph, parts),
        "external_models": findings.external_models(project.external, parts),
        "seams": findings.seams(
            deps,
            [c["name"] for c in contexts if c["models"]],
            summary["icp"],
        ),
        "project_wiring": [
            {"module": n[7:], "file": project.module_paths.get(n[7:], "")}
            for n in sorted(placement.wiring)
        ],
        "shared_kernel": [
            {
                "module": n[7:],
                "file": project.module_paths.get(n[7:], ""),
                "context": parts.get(n, ""),
                "imported_by_apps": list(apps),
            }
            for n, apps in sorted(kernel.items())
        ],
        "omnipresent": omnipresent_units(
            project,
            edges,
            parts,
            omnipresent,
            omnipresent_homes(project, parts, omnipresent, placement.pins),
        ),
    }
