"""Runbook definitions: TOML data validated as a whole, parameters bound at `run`.

A runbook is a list of steps; each step has one action from a fixed vocabulary, its gates,
a bake time, a deadline and what to do when a gate fails. Every problem is collected with a
stable id (runbook.E0xx, see docs/runbook.md) and the file:line it comes from.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Literal

from strangler.runbook.lines import LineIndex
from strangler.runbook.messages import Problem, RunbookInvalid

OnFail = Literal["pause", "rollback"]
ParamType = Literal["string", "number", "list"]

# Each action's own fields: name -> (expected kind, required).
ACTIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "set_weight": {"route": ("string", True), "weight": ("weight", True)},
    "set_state": {"route": ("string", True), "state": ("state", True)},
    "set_shadow": {"route": ("string", True), "percent": ("weight", True)},
    "cdc_snapshot": {"tables": ("list", True)},
    "reconcile": {"repair": ("bool", False)},
    "check": {},
    "wait": {},
    "approve": {},
    "command": {"argv": ("list", True)},
    "retire_report": {"route": ("string", True), "tables": ("list", False)},
}
TRAFFIC_ACTIONS = frozenset({"set_weight"})  # what on_fail = "rollback" can undo

# Each gate's fields, like ACTIONS.
GATES: dict[str, dict[str, tuple[str, bool]]] = {
    "error_rate": {
        "route": ("string", True),
        "max_delta": ("fraction", True),
        "min_requests": ("count", True),
    },
    "service_error_rate": {
        "route": ("string", True),
        "max_rate": ("fraction", True),
        "min_requests": ("count", True),
    },
    "latency_ratio": {
        "route": ("string", True),
        "max_ratio": ("positive", True),
        "min_requests": ("count", True),
        "quantile": ("fraction", False),
    },
    "breaker_closed": {"route": ("string", True)},
    "service_healthy": {"route": ("string", True)},
    "traffic_on_monolith": {"route": ("string", True), "min_requests": ("count", True)},
    "parity": {
        "route": ("string", True),
        "min_parity": ("percent", True),
        "min_samples": ("count", True),
    },
    "cdc_lag": {"max_seconds": ("positive", True)},
    "dead_letters": {},
    "drift": {},
    "cdc_checks": {},
    "boundaries_clean": {"boundaries": ("string", True)},
    "approval": {},
}
STEP_KEYS = {
    "id",
    "title",
    "action",
    "gates",
    "bake",
    "deadline",
    "interval",
    "on_fail",
    "rollback_to",
}
TOP_KEYS = {"name", "title", "description", "doc", "params", "steps"}
PARAM_KEYS = {"type", "help", "default"}
STATES = ("monolith", "canary", "service", "retired")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SYNTAX_AT = re.compile(r" \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
DEFAULT_DEADLINE = 120.0
DEFAULT_INTERVAL = 2.0
MIN_INTERVAL = 0.1


@dataclass(frozen=True)
class Param:
    """A value the runbook needs from whoever runs it (route, tables, service...)."""

    name: str
    type: ParamType
    help: str
    default: Any = None


@dataclass(frozen=True)
class Gate:
    """One check of a step: its kind and its settings (thresholds, route...)."""

    kind: str
    settings: dict[str, Any]

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"{self.kind}({shown})"


@dataclass(frozen=True)
class Step:
    """One step: an action, the gates that must pass, and what a failure does."""

    id: str
    title: str
    action: str
    settings: dict[str, Any]
    gates: tuple[Gate, ...]
    bake: float
    deadline: float
    interval: float
    on_fail: OnFail
    rollback_to: str = ""


@dataclass(frozen=True)
class Runbook:
    """A validated runbook; with `bound` True every placeholder has its value."""

    name: str
    title: str
    description: str
    doc: str
    params: tuple[Param, ...]
    steps: tuple[Step, ...]
    source: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    bound: bool = False

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)


def parse(text: str, source: str, params: dict[str, str] | None = None) -> Runbook:
    """Validate a runbook's TOML text as a whole; every problem is reported at once."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RunbookInvalid([syntax_problem(str(error), source, text)]) from error
    except RecursionError as error:  # nesting past tomllib's recursion limit
        problem = Problem("runbook.E000", source, "TOML nested too deeply to read")
        raise RunbookInvalid([problem]) from error
    checker = _Checker(source, LineIndex(text))
    runbook = checker.runbook(raw)
    if params is not None and not checker.problems and runbook is not None:
        runbook = checker.bind(runbook, params)
    if checker.problems or runbook is None:
        raise RunbookInvalid(checker.problems)
    return runbook


def syntax_problem(message: str, source: str, text: str) -> Problem:
    """tomllib's message as runbook.E000 at FILE:LINE ("at end of document": the last line)."""
    at = SYNTAX_AT.search(message)
    line = at["line"] if at else len(text.splitlines()) or 1
    what = f"{message[: at.start()]} (column {at['column']})" if at else message
    return Problem("runbook.E000", f"{source}:{line}", f"TOML syntax error: {what}")


class _Checker:
    """Walks a parsed runbook, collecting every problem with its line."""

    def __init__(self, source: str, lines: LineIndex) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []
        self.declared: set[str] = set()
        self.binding = False  # True while checking the runbook with its params substituted

    def add(self, id_: str, line: int, message: str, hint: str = "") -> None:
        self.problems.append(Problem(id_, f"{self.source}:{line}", message, hint))

    def runbook(self, raw: dict[str, Any]) -> Runbook | None:
        for key in sorted(set(raw) - TOP_KEYS):
            self.add(
                "runbook.E003",
                self.lines.top(key),
                f"unknown key {key!r}",
                f"top-level keys are {', '.join(sorted(TOP_KEYS))}",
            )
        name = self.text(raw, "name", self.lines.top("name"), required=True)
        if name and not ID.match(name):
            self.add(
                "runbook.E006",
                self.lines.top("name"),
                f"name {name!r} may hold only letters, digits, _ . -",
            )
        params = self.params(raw.get("params", {}))
        steps_raw = raw.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            self.add(
                "runbook.E014",
                self.lines.top("steps"),
                "no steps",
                "add [[steps]] tables, each with an id, a title and an action",
            )
            steps_raw = []
        declared = self.declared = {p.name for p in params}
        steps = [self.step(i, s, declared) for i, s in enumerate(steps_raw)]
        self.order(steps_raw)
        if self.problems:
            return None
        return Runbook(
            name=name,
            title=self.text(raw, "title", 1) or name,
            description=self.text(raw, "description", 1),
            doc=self.text(raw, "doc", 1),
            params=tuple(params),
            steps=tuple(s for s in steps if s is not None),
            source=self.source,
            raw=raw,
        )

    def text(
        self, raw: dict[str, Any], key: str, line: int, required: bool = False, label: str = ""
    ) -> str:
        """raw[key] as a string ("" when absent); E001/E002 (after `label`, the step's) if not."""
        value = raw.get(key)
        where = f"{label}: " if label else ""
        if value is None:
            if required:
                self.add("runbook.E001", line, f"{where}{key!r} is required")
            return ""
        if not isinstance(value, str):
            self.add(
                "runbook.E002",
                line,
                f"{where}{key!r} must be a string, not {type(value).__name__}",
            )
            return ""
        return value

    def params(self, raw: Any) -> list[Param]:
        if not isinstance(raw, dict):
            self.add("runbook.E002", self.lines.top("params"), "'params' must be a table")
            return []
        found = []
        for name, spec in raw.items():
            line = self.lines.param(name)
            if not isinstance(spec, dict):
                self.add(
                    "runbook.E002",
                    line,
                    f"param {name!r} must be a table",
                    'e.g. route = { type = "string", help = "route id" }',
                )
                continue
            for key in sorted(set(spec) - PARAM_KEYS):
                self.add("runbook.E003", line, f"param {name!r}: unknown key {key!r}")
            type_ = spec.get("type", "string")
            if type_ not in ("string", "number", "list"):
                self.add(
                    "runbook.E002",
                    line,
                    f"param {name!r}: type {type_!r} is not string, number or list",
                )
                continue
            found.append(Param(name, type_, str(spec.get("help", "")), spec.get("default")))
        return found

    def step(self, index: int, raw: Any, declared: set[str]) -> Step | None:
        line = self.lines.step(index)
        if not isinstance(raw, dict):
            self.add("runbook.E002", line, f"step {index + 1} must be a table")
            return None
        before = len(self.problems)
        step_id = self.text(raw, "id", line, required=True)
        if step_id and not ID.match(step_id):
            self.add(
                "runbook.E006",
                self.lines.in_step(index, "id"),
                f"step id {step_id!r} may hold only letters, digits, _ . -",
            )
        label = f"step {step_id or index + 1}"
        action = self.text(raw, "action", line, required=True)
        spec = ACTIONS.get(action)
        if action and spec is None:
            self.add(
                "runbook.E004",
                self.lines.in_step(index, "action"),
                f"{label}: unknown action {action!r}",
                f"actions are {', '.join(sorted(ACTIONS))}",
            )
        known = STEP_KEYS | set(spec or {})
        for key in sorted(set(raw) - known if spec is not None else ()):
            self.add(
                "runbook.E003",
                self.lines.in_step(index, key),
                f"{label}: unknown key {key!r} for action {action!r}",
            )
        settings = self.fields(
            spec or {}, raw, label, declared, lambda key: self.lines.in_step(index, key)
        )
        gates = self.gates(index, raw.get("gates", []), label, declared)
        bake = self.seconds(raw, "bake", 0.0, index, label)
        deadline = self.seconds(raw, "deadline", max(DEFAULT_DEADLINE, bake * 2), index, label)
        interval = self.seconds(raw, "interval", DEFAULT_INTERVAL, index, label)
        if interval < MIN_INTERVAL:
            self.add(
                "runbook.E010",
                self.lines.in_step(index, "interval"),
                f"{label}: interval {interval:g}s is below {MIN_INTERVAL:g}s",
                "gates read real sources; evaluate them at most 10 times a second",
            )
        if deadline < bake:
            self.add(
                "runbook.E011",
                self.lines.in_step(index, "deadline"),
                f"{label}: deadline {deadline:g}s is shorter than the bake {bake:g}s",
                "the deadline bounds the whole step, bake included",
            )
        on_fail = raw.get("on_fail", "pause")
        if on_fail not in ("pause", "rollback"):
            self.add(
                "runbook.E007",
                self.lines.in_step(index, "on_fail"),
                f"{label}: on_fail {on_fail!r} is not 'pause' or 'rollback'",
            )
        elif on_fail == "rollback" and action not in TRAFFIC_ACTIONS:
            self.add(
                "runbook.E007",
                self.lines.in_step(index, "on_fail"),
                f"{label}: on_fail = 'rollback' needs a traffic action (set_weight)",
                "use on_fail = 'pause' for other steps",
            )
        # a step id or nothing: any other value (a list, a number) names no step to look up
        rollback_to = self.text(
            raw, "rollback_to", self.lines.in_step(index, "rollback_to"), label=label
        )
        if rollback_to and on_fail != "rollback":
            self.add(
                "runbook.E007",
                self.lines.in_step(index, "rollback_to"),
                f"{label}: rollback_to needs on_fail = 'rollback'",
            )
        if len(self.problems) > before:
            return None
        return Step(
            step_id,
            self.text(raw, "title", line) or step_id,
            action,
            settings,
            gates,
            bake,
            deadline,
            interval,
            on_fail,
            rollback_to,
        )

    def gates(self, index: int, raw: Any, label: str, declared: set[str]) -> tuple[Gate, ...]:
        if not isinstance(raw, list):
            self.add(
                "runbook.E002",
                self.lines.in_step(index, "gates"),
                f"{label}: 'gates' must be a list of tables",
            )
            return ()
        found = []
        for number, entry in enumerate(raw):
            line = self.lines.gate(index, number)
            if not isinstance(entry, dict) or not isinstance(entry.get("gate"), str):
                self.add(
                    "runbook.E002",
                    line,
                    f"{label}: gate {number + 1} must be a table with a 'gate' name",
                )
                continue
            kind = entry["gate"]
            spec = GATES.get(kind)
            if spec is None:
                self.add(
                    "runbook.E005",
                    line,
                    f"{label}: unknown gate {kind!r}",
                    f"gates are {', '.join(sorted(GATES))}",
                )
                continue
            for key in sorted(set(entry) - set(spec) - {"gate"}):
                self.add("runbook.E003", line, f"{label}: gate {kind!r} has no setting {key!r}")
            fields = self.fields(
                spec, entry, f"{label} gate {kind}", declared, lambda _, at=line: at
            )
            found.append(Gate(kind, fields))
        return tuple(found)

    def fields(
        self,
        spec: dict[str, tuple[str, bool]],
        raw: dict[str, Any],
        label: str,
        declared: set[str],
        line_of: Any,
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, (kind, required) in spec.items():
            if key not in raw:
                if required:
                    self.add("runbook.E001", line_of(key), f"{label}: {key!r} is required")
                continue
            value = raw[key]
            if self.references(value, declared, line_of(key), label):
                found[key] = value  # checked again once the parameters are bound
            elif (problem := check_kind(kind, value)) is not None:
                self.add(problem[0], line_of(key), f"{label}: {key} {problem[1]}")
            else:
                found[key] = value
        return found

    def references(self, value: Any, declared: set[str], line: int, label: str) -> bool:
        """True when `value` holds placeholders; undeclared ones are reported."""
        names = placeholders(value)
        if self.binding:  # a value that still holds a placeholder was given one as its value
            declared = set()
        for name in sorted(names - declared):
            if self.binding:
                self.add(
                    "runbook.E008",
                    line,
                    f"{label}: {{{name}}} is left after binding",
                    "a --param value may not hold a {placeholder}",
                )
            else:
                self.add(
                    "runbook.E008",
                    line,
                    f"{label}: {{{name}}} is not a declared param",
                    f"add [params.{name}] or fix the spelling",
                )
        return bool(names)

    def seconds(
        self, raw: dict[str, Any], key: str, default: float, index: int, label: str
    ) -> float:
        value = raw.get(key, default)
        if self.references(value, self.declared, self.lines.in_step(index, key), label):
            return default  # checked again once the parameters are bound
        if (problem := check_kind("seconds", value)) is not None:
            self.add(problem[0], self.lines.in_step(index, key), f"{label}: {key} {problem[1]}")
            return default
        return float(value)

    def order(self, steps: list[Any]) -> None:
        """Step ids are unique; rollback_to names an earlier step (read from the raw steps)."""
        seen: dict[str, int] = {}
        for index, raw in enumerate(steps):
            step_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(step_id, str):
                continue
            if step_id in seen:
                self.add(
                    "runbook.E006",
                    self.lines.step(index),
                    f"step id {step_id!r} is used twice (first by step {seen[step_id] + 1})",
                )
            target = raw.get("rollback_to")
            if isinstance(target, str) and target and target not in seen:
                self.add(
                    "runbook.E007",
                    self.lines.in_step(index, "rollback_to"),
                    f"step {step_id}: rollback_to {target!r} is not an earlier step",
                )
            seen.setdefault(step_id, index)

    def bind(self, runbook: Runbook, given: dict[str, str]) -> Runbook | None:
        """Substitute parameter values; missing, unknown and ill-typed values are problems."""
        declared = {p.name: p for p in runbook.params}
        for name in sorted(set(given) - set(declared)):
            self.add(
                "runbook.E009",
                1,
                f"--param {name}: the runbook declares no such param",
                f"its params are {', '.join(sorted(declared)) or '(none)'}",
            )
        values: dict[str, Any] = {}
        for param in runbook.params:
            text = given.get(param.name)
            if text is None:
                if param.default is None:
                    self.add(
                        "runbook.E009",
                        self.lines.param(param.name),
                        f"param {param.name!r} needs a value",
                        f"pass --param {param.name}=VALUE ({param.help})",
                    )
                else:
                    values[param.name] = param.default
                continue
            value = typed(param, text)
            if value is None:
                self.add(
                    "runbook.E009",
                    self.lines.param(param.name),
                    f"param {param.name!r}: {text!r} is not a {param.type}",
                )
            else:
                values[param.name] = value
        if self.problems:
            return None
        raw = substitute(runbook.raw, values)
        self.binding = True
        bound = self.runbook(raw)
        if bound is None:
            return None
        return Runbook(
            bound.name,
            bound.title,
            bound.description,
            bound.doc,
            bound.params,
            bound.steps,
            bound.source,
            raw,
            bound=True,
        )


def placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """Replace placeholders: a value that is one whole placeholder takes the param's type."""
    if isinstance(value, dict):
        return {k: substitute(v, values) if k != "params" else v for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    return value


def typed(param: Param, text: str) -> Any:
    """A command-line value as the param's type, or None when it is not one."""
    if param.type == "list":
        items = [item.strip() for item in text.split(",") if item.strip()]
        return items or None
    if param.type == "number":
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return text or None


def check_kind(kind: str, value: Any) -> tuple[str, str] | None:
    """(id, message) when `value` is not of `kind`, else None."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return None if isinstance(value, str) and value else ("runbook.E002", "must be a string")
    if kind == "bool":
        return None if isinstance(value, bool) else ("runbook.E002", "must be true or false")
    if kind == "list":
        ok = isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
        return None if ok else ("runbook.E002", "must be a non-empty list of strings")
    if kind == "state":
        return None if value in STATES else ("runbook.E010", f"must be one of {', '.join(STATES)}")
    if not is_number or not math.isfinite(value):
        return ("runbook.E002", f"must be a finite number, not {value!r}")
    limits = {
        "weight": (0 <= value <= 100 and round(value, 2) == value, "from 0 to 100, two decimals"),
        "fraction": (0 <= value <= 1, "from 0 to 1"),
        "percent": (0 < value <= 100, "above 0, at most 100"),
        "positive": (value > 0, "above 0"),
        "count": (value >= 1 and int(value) == value, "a whole number of at least 1"),
        "seconds": (0 <= value <= 86400, "from 0 to 86400 seconds"),
    }
    ok, rule = limits[kind]
    return None if ok else ("runbook.E010", f"{value!r} is out of range ({rule})")
