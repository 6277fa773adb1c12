"""boundaries.toml: the team's constraints on the proposal and the boundaries CI holds.

Problems come back as a list of messages with stable ids (``boundaries.E001``...), all at once,
like Django's system checks; nothing is applied while any error stands.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from .omnipresent import DEFAULT_MIN_APPS
from .weights import DEFAULT_WEIGHTS


@dataclass(frozen=True)
class Problem:
    id: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" HINT: {self.hint}" if self.hint else ""
        return f"{self.id}: {self.message}{hint}"


@dataclass(frozen=True)
class DeclaredContext:
    name: str
    items: tuple[str, ...]
    depends_on: tuple[str, ...] | None


@dataclass(frozen=True)
class Boundaries:
    """Parsed boundaries.toml. Items are app labels or ``app_label.Model`` keys."""

    contexts: tuple[DeclaredContext, ...] = ()
    together: tuple[tuple[str, ...], ...] = ()
    apart: tuple[tuple[str, ...], ...] = ()
    target: int | None = None
    resolution: float = 1.0
    seed: int = 42
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    omnipresent_min_apps: int = DEFAULT_MIN_APPS  # 0: no module is set aside as omnipresent


TOP_KEYS = {"clustering", "weights", "context", "together", "apart"}


def _items(value: object, where: str, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(
            Problem(
                "boundaries.E002",
                f"{where} must be a list of app labels or 'app_label.Model' strings",
                'e.g. items = ["orders", "a.B"]',
            )
        )
        return ()
    return tuple(value)


def parse_boundaries(
    text: str, source: str = "boundaries.toml"
) -> tuple[Boundaries, list[Problem]]:
    """Parse and check the file's shape; returns the result and every problem found."""
    problems: list[Problem] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return Boundaries(), [
            Problem(
                "boundaries.E001",
                f"{source} is not valid TOML: {error}",
                "fix the syntax at the line shown",
            )
        ]
    for key in sorted(set(data) - TOP_KEYS):
        problems.append(
            Problem(
                "boundaries.E002",
                f"unknown section or key '{key}' in {source}",
                f"known: {', '.join(sorted(TOP_KEYS))}",
            )
        )
    clustering = data.get("clustering", {})
    target, resolution, seed = None, 1.0, 42
    if not isinstance(clustering, dict):
        problems.append(Problem("boundaries.E002", "[clustering] must be a table"))
        clustering = {}
    known = ("contexts", "resolution", "seed", "omnipresent_min_apps")
    for key in sorted(set(clustering) - set(known)):
        problems.append(
            Problem(
                "boundaries.E002", f"unknown key clustering.{key}", f"known: {', '.join(known)}"
            )
        )
    if "contexts" in clustering:
        target = clustering["contexts"]
        if not isinstance(target, int) or isinstance(target, bool) or target < 1:
            problems.append(
                Problem(
                    "boundaries.E008",
                    "clustering.contexts must be an integer >= 1",
                    "the number of contexts you want proposed",
                )
            )
            target = None
    if "resolution" in clustering:
        resolution = clustering["resolution"]
        if (
            not isinstance(resolution, (int, float))
            or isinstance(resolution, bool)
            or resolution <= 0
        ):
            problems.append(
                Problem(
                    "boundaries.E008",
                    "clustering.resolution must be a number > 0",
                    "above 1 gives more, smaller contexts",
                )
            )
            resolution = 1.0
    if "seed" in clustering:
        seed = clustering["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            problems.append(Problem("boundaries.E008", "clustering.seed must be an integer"))
            seed = 42
    min_apps = clustering.get("omnipresent_min_apps", DEFAULT_MIN_APPS)
    if not isinstance(min_apps, int) or isinstance(min_apps, bool) or min_apps < 0:
        problems.append(
            Problem(
                "boundaries.E008",
                "clustering.omnipresent_min_apps must be an integer >= 0",
                "0 turns omnipresent detection off",
            )
        )
        min_apps = DEFAULT_MIN_APPS
    weights = dict(DEFAULT_WEIGHTS)
    raw_weights = data.get("weights", {})
    if not isinstance(raw_weights, dict):
        raw_weights = {}
        problems.append(Problem("boundaries.E003", "[weights] must be a table of kind = number"))
    for kind, value in sorted(raw_weights.items()):
        if kind not in DEFAULT_WEIGHTS:
            problems.append(
                Problem(
                    "boundaries.E003",
                    f"unknown edge kind weights.{kind}",
                    f"known: {', '.join(sorted(DEFAULT_WEIGHTS))}",
                )
            )
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            problems.append(Problem("boundaries.E003", f"weights.{kind} must be a number >= 0"))
        else:
            weights[kind] = float(value)
    contexts: list[DeclaredContext] = []
    for index, entry in enumerate(_tables(data.get("context", []), "context", problems)):
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            problems.append(
                Problem(
                    "boundaries.E004",
                    f"[[context]] #{index + 1} has no name",
                    'add name = "orders"',
                )
            )
            continue
        if any(c.name == name for c in contexts):
            problems.append(Problem("boundaries.E004", f"context '{name}' is declared twice"))
            continue
        for key in sorted(set(entry) - {"name", "apps", "models", "depends_on"}):
            problems.append(
                Problem(
                    "boundaries.E002",
                    f"unknown key '{key}' in context '{name}'",
                    "known: name, apps, models, depends_on",
                )
            )
        items = _items(entry.get("apps", []), f"context '{name}' apps", problems) + _items(
            entry.get("models", []), f"context '{name}' models", problems
        )
        depends = entry.get("depends_on")
        depends_on = (
            None if depends is None else _items(depends, f"context '{name}' depends_on", problems)
        )
        contexts.append(DeclaredContext(name, items, depends_on))
    names = {c.name for c in contexts}
    for c in contexts:
        for target_name in c.depends_on or ():
            if target_name not in names:
                problems.append(
                    Problem(
                        "boundaries.E009",
                        f"context '{c.name}' depends_on unknown context '{target_name}'",
                        "depends_on names other [[context]] entries",
                    )
                )
    pinned: dict[str, str] = {}
    for c in contexts:
        for item in c.items:
            if item in pinned and pinned[item] != c.name:
                problems.append(
                    Problem(
                        "boundaries.E006",
                        f"'{item}' is pinned to both '{pinned[item]}' and '{c.name}'",
                    )
                )
            pinned[item] = c.name
    together = tuple(
        _items(e.get("items"), "[[together]] items", problems)
        for e in _tables(data.get("together", []), "together", problems)
    )
    apart = tuple(
        _items(e.get("items"), "[[apart]] items", problems)
        for e in _tables(data.get("apart", []), "apart", problems)
    )
    for group in apart:
        pins = [pinned[i] for i in group if i in pinned]
        if len(pins) != len(set(pins)):
            problems.append(
                Problem(
                    "boundaries.E007", f"apart items {list(group)} are pinned to the same context"
                )
            )
    for group in together:
        together_pins = {pinned[i] for i in group if i in pinned}
        if len(together_pins) > 1:
            problems.append(
                Problem(
                    "boundaries.E007",
                    f"together items {list(group)} are pinned "
                    f"to different contexts {sorted(together_pins)}",
                )
            )
    result = Boundaries(
        tuple(contexts),
        tuple(g for g in together if g),
        tuple(g for g in apart if g),
        target,
        float(resolution),
        seed,
        weights,
        min_apps,
    )
    return result, problems


def _tables(value: object, name: str, problems: list[Problem]) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(
            Problem(
                "boundaries.E002",
                f"{name} must be an array of tables",
                f"write [[{name}]] sections",
            )
        )
        return []
    return value


def check_items(
    boundaries: Boundaries, app_labels: set[str], model_keys: set[str]
) -> list[Problem]:
    """Every app or model the file names must exist in the analyzed project."""
    problems = []
    named = [(f"context '{c.name}'", c.items) for c in boundaries.contexts]
    named += [("[[together]]", g) for g in boundaries.together]
    named += [("[[apart]]", g) for g in boundaries.apart]
    for where, items in named:
        for item in items:
            if item not in app_labels and item not in model_keys:
                problems.append(
                    Problem(
                        "boundaries.E005",
                        f"{where} names '{item}', which is "
                        "neither an app label nor a model of this project",
                        "use an app label (orders) or app_label.Model",
                    )
                )
    return problems
