"""boundaries.toml: the team's constraints on the proposal and the boundaries CI holds.

Problems come back as a list with stable ids (``boundaries.E001``...) and the TOML line each
comes from, all at once, like Django's system checks; nothing is applied while any stands.
Checks against the analyzed project (items that exist, pins that contradict each other) live in
``pins.py``; this module only reads the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

from .omnipresent import DEFAULT_MIN_APPS
from .tomllines import TomlLines
from .weights import DEFAULT_WEIGHTS, EdgeKind, edge_kind


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, where it is, and what to do about it."""

    id: str
    message: str
    hint: str = ""
    source: str = "boundaries.toml"
    line: int = 0

    def __str__(self) -> str:
        hint = f" HINT: {self.hint}" if self.hint else ""
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.id}: {self.message}{hint}"

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "message": self.message,
            "hint": self.hint,
            "file": self.source,
            "line": self.line,
        }


@dataclass(frozen=True)
class DeclaredContext:
    """A ``[[context]]``: items are app labels or model keys, modules are dotted-name globs."""

    name: str
    items: tuple[str, ...]
    depends_on: tuple[str, ...] | None
    modules: tuple[str, ...] = ()
    index: int = 0  # position among the file's [[context]] tables, to find its lines


@dataclass(frozen=True)
class Rule:
    """A ``[[together]]`` or ``[[apart]]`` group of items."""

    items: tuple[str, ...]
    index: int = 0


@dataclass(frozen=True)
class Boundaries:
    """Parsed boundaries.toml. Items are app labels or ``app_label.Model`` keys."""

    contexts: tuple[DeclaredContext, ...] = ()
    together: tuple[Rule, ...] = ()
    apart: tuple[Rule, ...] = ()
    target: int | None = None
    resolution: float = 1.0
    seed: int = 42
    weights: dict[EdgeKind, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    omnipresent_min_apps: int = DEFAULT_MIN_APPS  # 0: no module is set aside as omnipresent
    source: str = field(default="boundaries.toml", compare=False)
    text: str = field(default="", compare=False, repr=False)

    @property
    def checks_anything(self) -> bool:
        """True when some context declares ``depends_on``: otherwise --check has no rule."""
        return any(c.depends_on is not None for c in self.contexts)

    def lines(self) -> TomlLines:
        return TomlLines(self.text)


TOP_KEYS = ("clustering", "weights", "context", "together", "apart")
CLUSTERING_KEYS = ("contexts", "resolution", "seed", "omnipresent_min_apps")
CONTEXT_KEYS = ("name", "apps", "models", "modules", "depends_on")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Reader:
    """Collects problems with their lines while the sections of one file are read."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = TomlLines(text)
        self.problems: list[Problem] = []

    def problem(self, id: str, message: str, hint: str = "", line: int = 0) -> None:
        self.problems.append(Problem(id, message, hint, self.source, line))

    def items(self, value: object, where: str, line: int) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(
                "boundaries.E002",
                f"{where} must be a list of non-empty strings",
                'e.g. apps = ["orders"], models = ["orders.Order"], modules = ["shop.utils.*"]',
                line,
            )
            return ()
        return tuple(value)

    def tables(self, data: dict, name: str) -> list[tuple[int, dict]]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(
                "boundaries.E002",
                f"{name} must be an array of tables",
                f"write [[{name}]] sections",
                self.lines.table(name),
            )
            return []
        return list(enumerate(value))

    def clustering(self, data: dict) -> tuple[int | None, float, int, int]:
        section = data.get("clustering", {})
        if not isinstance(section, dict):
            self.problem("boundaries.E002", "[clustering] must be a table")
            section = {}

        def line(key: str) -> int:
            return self.lines.key("clustering", 0, key)

        for key in sorted(set(section) - set(CLUSTERING_KEYS)):
            self.problem(
                "boundaries.E002",
                f"unknown key clustering.{key}",
                f"known: {', '.join(CLUSTERING_KEYS)}",
                line(key),
            )
        target = section.get("contexts")
        if target is not None and (not _is_int(target) or target < 1):
            self.problem(
                "boundaries.E008",
                "clustering.contexts must be an integer >= 1",
                "the number of contexts you want proposed",
                line("contexts"),
            )
            target = None
        resolution = section.get("resolution", 1.0)
        if not _is_number(resolution) or resolution <= 0:
            self.problem(
                "boundaries.E008",
                "clustering.resolution must be a number > 0",
                "above 1 gives more, smaller contexts",
                line("resolution"),
            )
            resolution = 1.0
        seed = section.get("seed", 42)
        if not _is_int(seed):
            self.problem("boundaries.E008", "clustering.seed must be an integer", "", line("seed"))
            seed = 42
        min_apps = section.get("omnipresent_min_apps", DEFAULT_MIN_APPS)
        if not _is_int(min_apps) or min_apps < 0:
            self.problem(
                "boundaries.E008",
                "clustering.omnipresent_min_apps must be an integer >= 0",
                "0 turns omnipresent detection off",
                line("omnipresent_min_apps"),
            )
            min_apps = DEFAULT_MIN_APPS
        return target, float(resolution), seed, min_apps

    def weights(self, data: dict) -> dict[EdgeKind, float]:
        weights = dict(DEFAULT_WEIGHTS)
        raw = data.get("weights", {})
        if not isinstance(raw, dict):
            self.problem(
                "boundaries.E003",
                "[weights] must be a table of kind = number",
                "",
                self.lines.key("", 0, "weights"),
            )
            return weights
        for name, value in sorted(raw.items()):
            line = self.lines.key("weights", 0, name)
            kind = edge_kind(name)
            if kind is None:
                self.problem(
                    "boundaries.E003",
                    f"unknown edge kind weights.{name}",
                    f"known: {', '.join(sorted(DEFAULT_WEIGHTS))}",
                    line,
                )
            elif not _is_number(value) or value < 0:
                self.problem("boundaries.E003", f"weights.{kind} must be a number >= 0", "", line)
            else:
                weights[kind] = float(value)
        return weights

    def contexts(self, data: dict) -> list[DeclaredContext]:
        contexts: list[DeclaredContext] = []
        for index, entry in self.tables(data, "context"):
            header = self.lines.table("context", index)
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                self.problem(
                    "boundaries.E004",
                    f"[[context]] #{index + 1} has no name",
                    'add name = "orders"',
                    header,
                )
                continue
            if any(c.name == name for c in contexts):
                self.problem(
                    "boundaries.E004",
                    f"context '{name}' is declared twice",
                    "",
                    self.lines.key("context", index, "name"),
                )
                continue
            for key in sorted(set(entry) - set(CONTEXT_KEYS)):
                self.problem(
                    "boundaries.E002",
                    f"unknown key '{key}' in context '{name}'",
                    f"known: {', '.join(CONTEXT_KEYS)}",
                    self.lines.key("context", index, key),
                )

            read = {
                key: self.items(
                    entry.get(key, []),
                    f"context '{name}' {key}",
                    self.lines.key("context", index, key),
                )
                for key in ("apps", "models", "modules", "depends_on")
            }
            depends_on = None if entry.get("depends_on") is None else read["depends_on"]
            contexts.append(
                DeclaredContext(
                    name, read["apps"] + read["models"], depends_on, read["modules"], index
                )
            )
        return contexts

    def rules(self, data: dict, name: str) -> tuple[Rule, ...]:
        found = []
        for index, entry in self.tables(data, name):
            line = self.lines.key(name, index, "items")
            items = self.items(entry.get("items"), f"[[{name}]] items", line)
            if items:
                found.append(Rule(items, index))
        return tuple(found)

    def check_names(self, contexts: list[DeclaredContext]) -> None:
        names = {c.name for c in contexts}
        for c in contexts:
            for target in c.depends_on or ():
                if target not in names:
                    self.problem(
                        "boundaries.E009",
                        f"context '{c.name}' depends_on unknown context '{target}'",
                        "depends_on names other [[context]] entries",
                        self.lines.value("context", c.index, "depends_on", target),
                    )


def parse_boundaries(
    text: str, source: str = "boundaries.toml"
) -> tuple[Boundaries, list[Problem]]:
    """Parse and check the file's shape; returns the result and every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"at line (\d+)", str(error))
        line = int(found.group(1)) if found else 0
        return Boundaries(source=source, text=text), [
            Problem(
                "boundaries.E001",
                f"not valid TOML: {error}",
                "fix the syntax at the line shown",
                source,
                line,
            )
        ]
    reader = _Reader(text, source)
    for key in sorted(set(data) - set(TOP_KEYS)):
        reader.problem(
            "boundaries.E002",
            f"unknown section or key '{key}'",
            f"known: {', '.join(TOP_KEYS)}",
            reader.lines.table(key) or reader.lines.key("", 0, key),
        )
    target, resolution, seed, min_apps = reader.clustering(data)
    weights = reader.weights(data)
    contexts = reader.contexts(data)
    reader.check_names(contexts)
    result = Boundaries(
        tuple(contexts),
        reader.rules(data, "together"),
        reader.rules(data, "apart"),
        target,
        resolution,
        seed,
        weights,
        min_apps,
        source,
        text,
    )
    return result, reader.problems
