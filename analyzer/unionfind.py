"""Disjoint sets of node names, for constraints that hold nodes together."""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    """Union-find with path halving; the smaller name represents a set (deterministic)."""

    def __init__(self, nodes: Iterable[str] = ()) -> None:
        self.parent = {n: n for n in nodes}

    def __contains__(self, node: str) -> bool:
        return node in self.parent

    def find(self, node: str) -> str:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = sorted((ra, rb))
            self.parent[high] = low
