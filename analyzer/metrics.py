"""Quality metrics of a partition of the dependency graph: pure functions, each citing its paper.

``edges`` are directed ``(source, target, weight)`` triples; ``parts`` maps every node to the
name of its part (context). Self-loops and edges to unknown nodes are ignored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

Edges = Iterable[tuple[str, str, float]]
NED_MIN, NED_MAX = 5, 20


def _clean(edges: Edges, parts: Mapping[str, str]) -> list[tuple[str, str, float]]:
    return [(s, t, w) for s, t, w in edges if s != t and s in parts and t in parts]


def modularity(edges: Edges, parts: Mapping[str, str]) -> float:
    """Newman modularity Q of the undirected weighted graph.

    Q = 1/(2m) Σ_ij [A_ij - k_i k_j / 2m] δ(c_i, c_j). Higher is better.
    Newman & Girvan, "Finding and evaluating community structure in networks", Phys. Rev. E
    69, 2004; Newman, "Modularity and community structure in networks", PNAS 103, 2006.
    """
    clean = _clean(edges, parts)
    total = sum(w for _, _, w in clean)
    if total <= 0:
        return 0.0
    inside: dict[str, float] = defaultdict(float)
    degree: dict[str, float] = defaultdict(float)
    for s, t, w in clean:
        degree[parts[s]] += w
        degree[parts[t]] += w
        if parts[s] == parts[t]:
            inside[parts[s]] += w
    return sum(
        inside[c] / total - (degree[c] / (2 * total)) ** 2 for c in sorted(set(parts.values()))
    )


def icp(edges: Edges, parts: Mapping[str, str]) -> float:
    """Inter-partition call percentage: share of dependency weight crossing parts. Lower is better.

    ICP = Σ_{k≠l} w(k,l) / Σ_{k,l} w(k,l). Kalia et al., "Mono2Micro: a practical and effective
    tool for decomposing monolithic Java applications to microservices", ESEC/FSE 2021.
    """
    clean = _clean(edges, parts)
    total = sum(w for _, _, w in clean)
    crossing = sum(w for s, t, w in clean if parts[s] != parts[t])
    return crossing / total if total else 0.0


def interface_counts(edges: Edges, parts: Mapping[str, str]) -> dict[str, int]:
    """Per part, how many of its elements are used from another part (its interface)."""
    used: dict[str, set[str]] = {p: set() for p in set(parts.values())}
    for s, t, _ in _clean(edges, parts):
        if parts[s] != parts[t]:
            used[parts[t]].add(t)
    return {p: len(v) for p, v in used.items()}


def ifn(edges: Edges, parts: Mapping[str, str]) -> float:
    """Interface number: mean number of elements per part used from other parts. Lower is better.

    Jin et al., "Service candidate identification from monolithic systems based on execution
    traces" (FoSCI), IEEE TSE 2019.
    """
    counts = interface_counts(edges, parts)
    return sum(counts.values()) / len(counts) if counts else 0.0


def ned(parts: Mapping[str, str], low: int = NED_MIN, high: int = NED_MAX) -> float:
    """Non-extreme distribution: share of elements in parts sized outside [low, high].

    Lower is better (0 means every element sits in a part of reasonable size).
    Wu, Hassan & Holt, "Comparison of clustering algorithms in the context of software
    evolution", ICSM 2005; used as in Mono2Micro (Kalia et al. 2021).
    """
    sizes = Counter(parts.values())
    if not sizes:
        return 0.0
    extreme = sum(n for n in sizes.values() if n < low or n > high)
    return extreme / sum(sizes.values())


def structural_modularity(edges: Edges, parts: Mapping[str, str]) -> float:
    """SM = (1/K) Σ_k μ_k/m_k² - (1/(K(K-1)/2)) Σ_{k<l} s_kl/(2 m_k m_l). Higher is better.

    μ_k: edges inside part k, m_k: its size, s_kl: edges between k and l (unweighted,
    undirected). Jin et al. 2019 (FoSCI), after Mancoridis et al.'s MQ (IWPC 1998).
    """
    sizes = Counter(parts.values())
    pairs = {frozenset((s, t)) for s, t, _ in _clean(edges, parts)}
    inside: Counter[str] = Counter()
    between: Counter[tuple[str, str]] = Counter()
    for pair in pairs:
        s, t = tuple(pair)
        a, b = sorted((parts[s], parts[t]))
        if a == b:
            inside[a] += 1
        else:
            between[(a, b)] += 1
    k = len(sizes)
    if k == 0:
        return 0.0
    cohesion = sum(inside[p] / sizes[p] ** 2 for p in sorted(sizes)) / k
    if k == 1:
        return cohesion
    coupling = sum(n / (2 * sizes[a] * sizes[b]) for (a, b), n in sorted(between.items()))
    return cohesion - coupling / (k * (k - 1) / 2)


def part_metrics(edges: Edges, parts: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Per part: elements, cohesion (μ_k/m_k², as in SM), coupling (share of the weight touching
    the part that crosses its boundary), inbound/outbound crossing weight, interface size."""
    clean = _clean(edges, parts)
    sizes = Counter(parts.values())
    pairs: dict[str, set[frozenset[str]]] = defaultdict(set)
    internal: dict[str, float] = defaultdict(float)
    inbound: dict[str, float] = defaultdict(float)
    outbound: dict[str, float] = defaultdict(float)
    for s, t, w in clean:
        a, b = parts[s], parts[t]
        if a == b:
            internal[a] += w
            pairs[a].add(frozenset((s, t)))
        else:
            outbound[a] += w
            inbound[b] += w
    interface = interface_counts(clean, parts)
    result = {}
    for p, size in sizes.items():
        touching = internal[p] + inbound[p] + outbound[p]
        result[p] = {
            "elements": size,
            "cohesion": round(len(pairs[p]) / size**2, 4),
            "coupling": round((inbound[p] + outbound[p]) / touching, 4) if touching else 0.0,
            "inbound_weight": round(inbound[p], 4),
            "outbound_weight": round(outbound[p], 4),
            "interface": interface.get(p, 0),
        }
    return result


def summary(edges: Edges, parts: Mapping[str, str]) -> dict[str, float]:
    """The global metrics the report shows for a partition, rounded for stable output."""
    clean = _clean(edges, parts)
    return {
        "contexts": len(set(parts.values())),
        "modularity": round(modularity(clean, parts), 4),
        "icp": round(icp(clean, parts), 4),
        "ifn": round(ifn(clean, parts), 4),
        "ned": round(ned(parts), 4),
        "sm": round(structural_modularity(clean, parts), 4),
    }
