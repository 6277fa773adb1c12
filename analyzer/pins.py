"""boundaries.toml against the analyzed project: items that exist, and pins that agree.

An app label pins the app's models and modules; a model key or a module glob pins just that,
and wins over its app's pin (the specific item is the team's exception to the general one).
Two pins of the same specificity on one node, a ``together`` joining two pins, and ``apart``
items held together are contradictions: errors, never a pin silently dropped.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from .boundaries import Boundaries, Problem
from .unionfind import UnionFind


@dataclass(frozen=True)
class Layout:
    """What items are checked against: the project's apps, models, modules and broken files."""

    app_models: Mapping[str, tuple[str, ...]]  # app label -> model keys
    module_app: Mapping[str, str]  # module -> app label, "" outside any app
    parse_errors: tuple[tuple[str, int, str], ...] = ()  # file, line, message


@dataclass(frozen=True)
class Pins:
    """Constraints as graph nodes (``model:k``, ``module:m``), ready for clustering."""

    contexts: Mapping[str, tuple[str, ...]]
    together: tuple[tuple[str, ...], ...]
    apart: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]

    def context_of(self, node: str) -> str | None:
        return next((name for name, nodes in self.contexts.items() if node in nodes), None)


EXPLICIT, BY_APP = 2, 1


def expand(item: str, layout: Layout) -> tuple[str, ...]:
    """The nodes an item names: a model, or an app's models and modules."""
    label, _, name = item.partition(".")
    if name:
        return (f"model:{item}",) if item in layout.app_models.get(label, ()) else ()
    if item not in layout.app_models and item not in layout.module_app.values():
        return ()
    models = tuple(f"model:{k}" for k in layout.app_models.get(item, ()))
    return models + tuple(
        f"module:{m}" for m, app in sorted(layout.module_app.items()) if app == item
    )


def match_modules(pattern: str, layout: Layout) -> tuple[str, ...]:
    """Modules named by a glob (``shop.utils.*``) or an exact dotted name."""
    if not any(c in pattern for c in "*?["):  # a locked file lists thousands of exact names
        return (f"module:{pattern}",) if pattern in layout.module_app else ()
    return tuple(
        f"module:{m}" for m in sorted(layout.module_app) if fnmatch.fnmatchcase(m, pattern)
    )


def _broken_hint(item: str, layout: Layout) -> str:
    label = item.partition(".")[0]
    near = [e for e in layout.parse_errors if label in e[0].replace("\\", "/").split("/")]
    shown = (near or list(layout.parse_errors))[:3]
    if not shown:
        return "use an app label (orders) or app_label.Model"
    return "it may be in a file that does not parse: " + ", ".join(
        f"{file}:{line} ({message})" for file, line, message in shown
    )


class _Checker:
    def __init__(self, boundaries: Boundaries, layout: Layout) -> None:
        self.b = boundaries
        self.layout = layout
        self.lines = boundaries.lines()
        self.problems: list[Problem] = []

    def problem(self, id: str, message: str, hint: str = "", line: int = 0) -> None:
        self.problems.append(Problem(id, message, hint, self.b.source, line))

    def item_nodes(self, item: str, where: str, line: int) -> tuple[str, ...]:
        nodes = expand(item, self.layout)
        if not nodes:
            self.problem(
                "boundaries.E005",
                f"{where} names '{item}', which is neither an app label nor a model of "
                "this project",
                _broken_hint(item, self.layout),
                line,
            )
        return nodes

    def claims(self) -> dict[str, dict[int, dict[str, tuple[str, int]]]]:
        """node -> specificity -> context -> (item, line) that pins it there."""
        claims: dict[str, dict[int, dict[str, tuple[str, int]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for c in self.b.contexts:
            for item in c.items:
                key = "models" if "." in item else "apps"
                line = self.lines.value("context", c.index, key, item)
                level = EXPLICIT if "." in item else BY_APP
                for node in self.item_nodes(item, f"context '{c.name}'", line):
                    claims[node][level].setdefault(c.name, (item, line))
            for pattern in c.modules:
                line = self.lines.value("context", c.index, "modules", pattern)
                nodes = match_modules(pattern, self.layout)
                if not nodes:
                    self.problem(
                        "boundaries.E010",
                        f"context '{c.name}' modules '{pattern}' matches no module",
                        "dotted module names, * matches any part: shop.utils.*",
                        line,
                    )
                for node in nodes:
                    claims[node][EXPLICIT].setdefault(c.name, (pattern, line))
        return claims

    def pins(self) -> dict[str, tuple[str, ...]]:
        winners: dict[str, list[str]] = {c.name: [] for c in self.b.contexts}
        reported: set[tuple[str, str, str, str]] = set()
        for node, levels in sorted(self.claims().items()):
            top = levels[max(levels)]
            names = sorted(top)
            for other in names[1:]:
                (a_item, a_line), (b_item, b_line) = top[names[0]], top[other]
                if (names[0], a_item, other, b_item) not in reported:
                    reported.add((names[0], a_item, other, b_item))
                    self.problem(
                        "boundaries.E006",
                        f"'{node.partition(':')[2]}' is pinned to both '{names[0]}' "
                        f"('{a_item}', line {a_line}) and '{other}' ('{b_item}')",
                        "pin each app, model or module to one context",
                        b_line,
                    )
            winners[names[0]].append(node)
        return {name: tuple(nodes) for name, nodes in winners.items()}

    def rule_nodes(self, kind: str) -> list[tuple[int, list[tuple[str, tuple[str, ...]]]]]:
        found = []
        for rule in self.b.together if kind == "together" else self.b.apart:
            expanded = []
            for item in rule.items:
                line = self.lines.value(kind, rule.index, "items", item)
                expanded.append((item, self.item_nodes(item, f"[[{kind}]]", line)))
            found.append((rule.index, expanded))
        return found

    def contradictions(self, pins: Mapping[str, tuple[str, ...]]) -> Pins:
        """Together groups that join two pins, apart items that pins or groups hold together."""
        sets = UnionFind()
        find, union = sets.find, sets.union
        for name, nodes in pins.items():
            for node in nodes:
                union(f"context:{name}", node)
        together = self.rule_nodes("together")
        joined: set[str] = set()
        for index, expanded in together:
            members = [n for _, group in expanded for n in group]
            for node in members[1:]:
                union(members[0], node)
            root = find(members[0]) if members else ""
            contexts = sorted(n for n in pins if find(f"context:{n}") == root)
            if len(contexts) > 1 and root not in joined:
                joined.add(root)
                self.problem(
                    "boundaries.E007",
                    f"together items {[i for i, _ in expanded]} join contexts "
                    f"{contexts}, which are pinned apart",
                    "drop the together rule or move the pins into one context",
                    self.lines.key("together", index, "items"),
                )
        apart_pairs = []
        for index, expanded in self.rule_nodes("apart"):
            for i, (a_item, a_nodes) in enumerate(expanded):
                for b_item, b_nodes in expanded[i + 1 :]:
                    apart_pairs.append((a_nodes, b_nodes))
                    held = {find(n) for n in a_nodes} & {find(n) for n in b_nodes}
                    if held:
                        self.problem(
                            "boundaries.E007",
                            f"apart items '{a_item}' and '{b_item}' are held together by a "
                            "pin or a together rule",
                            "an item cannot be both with and apart from another",
                            self.lines.key("apart", index, "items"),
                        )
        groups = tuple(tuple(n for _, g in expanded for n in g) for _, expanded in together)
        return Pins(pins, groups, tuple(apart_pairs))


def resolve_pins(boundaries: Boundaries, layout: Layout) -> tuple[Pins, list[Problem]]:
    """The file's constraints as nodes, and every problem found against this project."""
    checker = _Checker(boundaries, layout)
    pins = checker.contradictions(checker.pins())
    return pins, checker.problems
