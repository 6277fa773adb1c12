"""Metrics match their published formulas; clustering is deterministic and obeys constraints."""

import networkx as nx
import pytest

from strangler_analyzer import metrics
from strangler_analyzer.boundaries import parse_boundaries
from strangler_analyzer.cluster import cluster

# Two triangles joined by one weak edge: the textbook two-community graph.
EDGES = [
    ("a", "b", 1.0),
    ("b", "c", 1.0),
    ("a", "c", 1.0),
    ("x", "y", 1.0),
    ("y", "z", 1.0),
    ("x", "z", 1.0),
    ("c", "x", 0.5),
]
SPLIT = {"a": "L", "b": "L", "c": "L", "x": "R", "y": "R", "z": "R"}
LUMP = dict.fromkeys(SPLIT, "all")


def test_modularity_equals_networkx_for_the_same_partition():
    graph = nx.Graph()
    graph.add_weighted_edges_from(EDGES)
    expected = nx.community.modularity(graph, [{"a", "b", "c"}, {"x", "y", "z"}])
    assert metrics.modularity(EDGES, SPLIT) == pytest.approx(expected)
    assert metrics.modularity(EDGES, LUMP) == pytest.approx(0.0)


def test_icp_is_the_share_of_weight_crossing_parts():
    assert metrics.icp(EDGES, SPLIT) == pytest.approx(0.5 / 6.5)
    assert metrics.icp(EDGES, LUMP) == 0.0


def test_ifn_counts_elements_used_from_outside():
    # c -> x crosses: x is R's interface, L exposes nothing.
    assert metrics.interface_counts(EDGES, SPLIT) == {"L": 0, "R": 1}
    assert metrics.ifn(EDGES, SPLIT) == pytest.approx(0.5)


def test_ned_counts_elements_in_too_small_or_too_large_parts():
    parts = {f"n{i}": "big" if i < 25 else ("mid" if i < 31 else "tiny") for i in range(32)}
    assert metrics.ned(parts) == pytest.approx((25 + 1) / 32)


def test_structural_modularity_by_hand():
    # Each part: 3 edges over 3 nodes -> 3/9; one edge between parts: 1/(2*3*3); K=2.
    assert metrics.structural_modularity(EDGES, SPLIT) == pytest.approx(3 / 9 - 1 / 18)


def undirected(edges):
    return {tuple(sorted((s, t))): w for s, t, w in edges}


def test_louvain_finds_the_two_triangles_and_is_deterministic():
    first = cluster(list(SPLIT), undirected(EDGES), seed=3)
    assert first == cluster(list(reversed(list(SPLIT))), undirected(EDGES), seed=3)
    assert first["a"] == first["b"] == first["c"] != first["x"] == first["y"] == first["z"]


def test_constraints_pin_together_apart_and_target_count():
    w = undirected(EDGES)
    apart = cluster(list(SPLIT), w, apart=[(["a"], ["b"])])
    assert apart["a"] != apart["b"]
    together = cluster(list(SPLIT), w, together=[["a", "z"]])
    assert together["a"] == together["z"]
    pinned = cluster(list(SPLIT), w, pins={"one": ["a"], "two": ["b"]})
    assert pinned["a"] != pinned["b"]
    merged = cluster(list(SPLIT), w, target=1)
    assert len(set(merged.values())) == 1
    more = cluster(list(SPLIT), w, target=3)
    assert len(set(more.values())) == 3


def test_broken_boundaries_file_reports_every_problem_with_ids():
    _, problems = parse_boundaries(
        "[clustering]\ncontexts = 0\n[weights]\nrelation = 'x'\nfoo = 1\n"
        "[[context]]\napps = ['a']\n[[context]]\nname = 'b'\napps = ['x']\n"
        "depends_on = ['nowhere']\n[[context]]\nname = 'c'\napps = ['x']\n"
    )
    found = sorted((p.id, p.line) for p in problems)
    assert found == [
        ("boundaries.E003", 4),
        ("boundaries.E003", 5),
        ("boundaries.E004", 6),
        ("boundaries.E008", 2),
        ("boundaries.E009", 11),
    ]  # pins naming the same app twice are checked against the project (test_check_gate.py)
    _, problems = parse_boundaries("[clustering]\nseed = 1\n[clustering\n")
    assert [(p.id, p.line) for p in problems] == [("boundaries.E001", 3)]


def test_code_split_off_with_a_pinned_node_follows_what_it_is_linked_to():
    # Louvain puts the two pinned models and the module using one of them together; when
    # the pins are separated, the module goes with the model it uses, not with the first name.
    w = undirected(
        [("model:a", "model:b", 10), ("module:r", "model:b", 3), ("module:s", "model:a", 2)]
    )
    parts = cluster(
        ["model:a", "model:b", "module:r", "module:s"],
        w,
        pins={"one": ["model:a"], "two": ["model:b"]},
        anchors=frozenset({"model:a", "model:b"}),
    )
    assert parts["module:r"] == parts["model:b"] != parts["model:a"] == parts["module:s"]
