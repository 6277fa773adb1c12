"""Propose contexts: deterministic Louvain community detection under the team's constraints.

Louvain: Blondel et al., "Fast unfolding of communities in large networks", J. Stat. Mech. 2008,
as implemented by networkx (``louvain_communities`` with a fixed seed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from .unionfind import UnionFind

MIN_CONTEXTS = 8  # an architect's 8-15 business capabilities
MAX_CONTEXTS = 15
TINY_SHARE = 0.03  # a context with fewer than 3% of the models (at least 2) is tiny
TINY_FROM_MODELS = 40


def cluster(
    nodes: Sequence[str],
    weights: Mapping[tuple[str, str], float],
    *,
    together: Sequence[Sequence[str]] = (),
    pins: Mapping[str, Sequence[str]] | None = None,
    apart: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
    target: int | None = None,
    resolution: float = 1.0,
    seed: int = 42,
    anchors: frozenset[str] = frozenset(),
) -> dict[str, int]:
    """Assign every node a community number; same input, same output.

    ``weights`` holds undirected weights keyed by sorted node pairs. ``together`` groups and
    each pin's nodes stay in one community; nodes of different pins and of ``apart`` pairs
    never share one; ``target`` merges (or splits, by raising the resolution) to that many.
    A community holding no ``anchors`` (models: a context must own data) joins the one it is
    most linked to.
    """
    import networkx as nx

    nodes = sorted(nodes)
    pins = pins or {}
    uf = UnionFind(nodes)
    for group in [*together, *pins.values()]:
        group = [n for n in group if n in uf]
        for other in group[1:]:
            uf.union(group[0], other)
    pin_of = {uf.find(n): name for name, group in pins.items() for n in group if n in uf}
    conflicts: set[frozenset[str]] = set()
    for left, right in apart:
        for a in left:
            for b in right:
                if a in uf and b in uf and uf.find(a) != uf.find(b):
                    conflicts.add(frozenset((uf.find(a), uf.find(b))))
    pinned = sorted(pin_of)
    for i, a in enumerate(pinned):
        for b in pinned[i + 1 :]:
            if pin_of[a] != pin_of[b]:
                conflicts.add(frozenset((a, b)))
    graph = nx.Graph()
    graph.add_nodes_from(sorted({uf.find(n) for n in nodes}))
    contracted: dict[tuple[str, str], float] = defaultdict(float)
    for (a, b), w in sorted(weights.items()):
        ra, rb = uf.find(a), uf.find(b)
        if ra != rb and w > 0:
            contracted[(ra, rb) if ra < rb else (rb, ra)] += w
    graph.add_weighted_edges_from((a, b, w) for (a, b), w in sorted(contracted.items()))

    def run(res: float) -> list[set[str]]:
        found = nx.community.louvain_communities(graph, weight="weight", resolution=res, seed=seed)
        return _separate([set(c) for c in found], conflicts, contracted)

    # A pinned context is kept even when it owns no model: the team declared it.
    anchored = {uf.find(n) for n in anchors if n in uf} | set(pin_of)
    communities = _absorb(run(resolution), anchored, conflicts, contracted)
    if target is None:
        models = {uf.find(n) for n in anchors if n in uf}
        communities = _merge_tiny(communities, models, set(pin_of), conflicts, contracted)
        communities = _merge_down(communities, MAX_CONTEXTS, conflicts, contracted)
    else:
        res = resolution
        for _ in range(12):
            if len(communities) >= target:
                break
            res *= 1.6
            communities = _absorb(run(res), anchored, conflicts, contracted)
        communities = _merge_down(communities, target, conflicts, contracted)
    order = sorted(communities, key=lambda c: min(c))
    super_of = {n: uf.find(n) for n in nodes}
    index = {s: i for i, c in enumerate(order) for s in c}
    return {n: index[super_of[n]] for n in nodes}


def _link(a: set[str], b: set[str], contracted: Mapping[tuple[str, str], float]) -> float:
    return sum(w for (x, y), w in contracted.items() if (x in a and y in b) or (x in b and y in a))


def _conflicted(a: set[str], b: set[str], conflicts: set[frozenset[str]]) -> bool:
    return any(frozenset((x, y)) in conflicts for x in a for y in b)


def _separate(
    communities: list[set[str]],
    conflicts: set[frozenset[str]],
    contracted: Mapping[tuple[str, str], float],
) -> list[set[str]]:
    """Move nodes out of communities holding a pair that must stay apart.

    The other members of a community split this way then join whichever of its parts they
    are most linked to (ties stay), rather than the part whose pinned node sorts first.
    """
    communities = [set(c) for c in sorted(communities, key=min)]
    original = [frozenset(c) for c in communities]
    for pair in sorted(conflicts, key=sorted):
        a, b = sorted(pair)
        home = next(c for c in communities if a in c)
        if b not in home:
            continue
        home.discard(b)
        options = sorted(
            (c for c in communities if c is not home and c and not _conflicted({b}, c, conflicts)),
            key=min,
        )
        best = max(options, key=lambda c: _link({b}, c, contracted), default=None)
        if best is not None and _link({b}, best, contracted) > 0:
            best.add(b)
        else:
            communities.append({b})
    constrained = {n for pair in conflicts for n in pair}
    neighbours: dict[str, dict[str, float]] = defaultdict(dict)
    for (x, y), w in contracted.items():
        neighbours[x][y] = neighbours[y][x] = w
    for before in original:
        parts = [c for c in communities if c & before & constrained]
        if len(parts) < 2:
            continue
        for node in sorted(before - constrained):
            here = next((c for c in parts if node in c), None)
            if here is None:
                continue
            link = {id(c): sum(w for m, w in neighbours[node].items() if m in c) for c in parts}
            best = max(parts, key=lambda c: (link[id(c)], c is here))
            if best is not here:
                here.discard(node)
                best.add(node)
    return [c for c in communities if c]


def _absorb(
    communities: list[set[str]],
    anchored: set[str],
    conflicts: set[frozenset[str]],
    contracted: Mapping[tuple[str, str], float],
) -> list[set[str]]:
    """Merge each community without an anchor into its most linked anchored community."""
    if not anchored:
        return communities
    keep = [c for c in communities if c & anchored]
    unlinked: set[str] = set()
    for loose in sorted((c for c in communities if not c & anchored), key=min):
        options = sorted((c for c in keep if not _conflicted(loose, c, conflicts)), key=min)
        best = max(options, key=lambda c: _link(loose, c, contracted), default=None)
        if best is not None and _link(loose, best, contracted) > 0:
            best |= loose
        else:
            unlinked |= loose
    # Code tied to no model at all (settings, health checks) forms one shared context.
    return sorted([*keep, unlinked] if unlinked else keep, key=min)


def _merge_tiny(
    communities: list[set[str]],
    models: set[str],
    pinned: set[str],
    conflicts: set[frozenset[str]],
    contracted: Mapping[tuple[str, str], float],
) -> list[set[str]]:
    """Merge each tiny context into the one it is most coupled with, unless it is isolated.

    Tiny: fewer than ``TINY_SHARE`` of the models (at least 2), in a project of
    ``TINY_FROM_MODELS`` models or more (in a small one, a one-model context can be a real
    capability), while more than ``MIN_CONTEXTS`` remain; a pinned context stays.
    """
    limit = max(2, round(len(models) * TINY_SHARE))
    communities = sorted(communities, key=min)
    while len(communities) > MIN_CONTEXTS and len(models) >= TINY_FROM_MODELS:
        sizes = [len(c & models) for c in communities]
        tiny = sorted(
            (i for i, c in enumerate(communities) if 0 < sizes[i] < limit and not c & pinned),
            key=lambda i: (sizes[i], min(communities[i])),
        )
        links = _links(communities, contracted)
        merged = False
        for i in tiny:
            options = [
                j
                for j, c in enumerate(communities)
                if j != i and c & models and not _conflicted(communities[i], c, conflicts)
            ]
            best = max(options, key=lambda j: (links.get((i, j), 0.0), -j), default=None)
            if best is not None and links.get((i, best), 0.0) > 0:
                communities[best] |= communities[i]
                del communities[i]
                merged = True
                break
        if not merged:
            break
    return communities


def _links(
    communities: list[set[str]], contracted: Mapping[tuple[str, str], float]
) -> dict[tuple[int, int], float]:
    """Total weight between each pair of communities, both ways round: (i, j) and (j, i)."""
    index = {n: i for i, c in enumerate(communities) for n in c}
    links: dict[tuple[int, int], float] = defaultdict(float)
    for (x, y), w in contracted.items():
        i, j = index[x], index[y]
        if i != j:
            links[(i, j)] += w
            links[(j, i)] += w
    return links


def _merge_down(
    communities: list[set[str]],
    target: int,
    conflicts: set[frozenset[str]],
    contracted: Mapping[tuple[str, str], float],
) -> list[set[str]]:
    """Merge the most strongly linked pair of communities (per size) until ``target`` remain."""
    communities = sorted(communities, key=min)
    while len(communities) > target:
        index = {n: i for i, c in enumerate(communities) for n in c}
        links: dict[tuple[int, int], float] = defaultdict(float)
        for (x, y), w in contracted.items():
            i, j = sorted((index[x], index[y]))
            if i != j:
                links[(i, j)] += w
        best = None
        for i, a in enumerate(communities):
            for j in range(i + 1, len(communities)):
                b = communities[j]
                if _conflicted(a, b, conflicts):
                    continue
                score = links.get((i, j), 0.0) / (len(a) * len(b))
                if best is None or score > best[0]:
                    best = (score, i, j)
        if best is None:
            break
        _, i, j = best
        communities[i] = communities[i] | communities[j]
        del communities[j]
    return communities
