"""Resolve every file's facts into one project: apps, models, and typed dependency edges.

Nodes are ``model:app_label.Model`` (the unit that must have exactly one owner) and
``module:dotted.name`` (the code that uses models); app-level facts (migrations) use
``app:label``. Every edge carries the file and line that justify it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from .facts import (
    AUTH_USER,
    RELATION_HOMES,
    RELATION_KINDS,
    ClassFact,
    Endpoint,
    FileFacts,
    Import,
    Receiver,
    Ref,
    Relation,
    Use,
)
from .weights import EdgeKind

# (reference, app label it appears in, key of the model it appears in) -> model key
ModelKey = Callable[[Ref, str, str], str | None]

DJANGO_MODEL_BASES = {
    "django.db.models.Model",
    "django.db.models.base.Model",
    "django.contrib.gis.db.models.Model",
    "django.contrib.auth.models.AbstractUser",
    "django.contrib.auth.models.AbstractBaseUser",
    "django.contrib.auth.base_user.AbstractBaseUser",
}
APPCONFIG_BASES = {"django.apps.AppConfig", "django.apps.config.AppConfig"}
DJANGO_SIGNALS = "django.db.models.signals."
SELF_NAMES = ("self", "cls")  # self.model, cls.objects: which model cannot be told here


@dataclass(frozen=True)
class App:
    label: str
    name: str
    installed: bool = True  # False: INSTALLED_APPS is known and does not list it


@dataclass(frozen=True)
class Model:
    key: str
    qualname: str
    module: str
    path: str
    line: int
    table: str
    app: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    file: str
    line: int
    detail: str
    scale: float = 1.0  # multiplies the kind's weight (spread or frequency)


class Weighted(NamedTuple):
    """An edge with the weight its kind (and scale) gives it under the current weights."""

    source: str
    target: str
    weight: float
    edge: Edge


@dataclass(frozen=True)
class EndpointInfo:
    """A route, its view, and the models the view's code reads or writes."""

    route: str
    view: str
    module: str
    file: str
    line: int
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    file: str
    line: int
    message: str


@dataclass(frozen=True)
class Project:
    """The resolved project: plain data the graph and report stages read."""

    apps: tuple[App, ...]
    models: tuple[Model, ...]
    module_paths: dict[str, str]
    module_app: dict[str, str]
    edges: tuple[Edge, ...]
    endpoints: tuple[EndpointInfo, ...]
    tasks: tuple[tuple[str, str], ...]
    unresolved: tuple[Note, ...]
    parse_errors: tuple[Note, ...]
    settings_modules: tuple[str, ...]
    external: tuple[Edge, ...] = ()  # to ``external:app.Model``: models the project uses only


class _Resolver:
    def __init__(self, facts: list[FileFacts]) -> None:
        self.facts = facts
        self.by_module = {f.module: f for f in facts}
        self.aliases = {f.module: dict(f.aliases) for f in facts}
        self.classes: dict[str, tuple[FileFacts, ClassFact]] = {}
        self.known: set[str] = set()
        for f in facts:
            for c in f.classes:
                if "." not in c.name:
                    self.classes[f"{f.module}.{c.name}"] = (f, c)
            self.known.update(t.qualname for t in f.tasks)
            self.known.update(s.value for s in f.signals)
        self.known.update(self.classes)
        self._model_memo: dict[str, bool] = {}

    def module_of(self, qualname: str) -> str | None:
        """The longest prefix of ``qualname`` that is a project module."""
        parts = qualname.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self.by_module:
                return candidate
        return None

    def symbol(self, qualname: str, depth: int = 0) -> Ref:
        """Follow re-exports (``from .x import Y`` in a package) to where a name is defined;
        a name bound to ``get_model(...)`` or ``get_user_model()`` gives that model."""
        here = Ref("name", qualname)
        if qualname in self.known or depth > 6 or not qualname:
            return here
        module = self.module_of(qualname)
        if module is None or module == qualname:
            return here
        head, _, rest = qualname[len(module) + 1 :].partition(".")
        target = self.aliases.get(module, {}).get(head)
        if target is not None and target.kind != "name":
            return here if rest else target
        if target is not None and target.value != qualname:
            return self.symbol(f"{target.value}.{rest}" if rest else target.value, depth + 1)
        for star in self.by_module[module].star_imports:
            candidate = self.symbol(f"{star}.{head}", depth + 1)
            if candidate.kind == "name" and candidate.value in self.known:
                return Ref("name", f"{candidate.value}.{rest}" if rest else candidate.value)
        return here

    def resolve(self, ref: Ref) -> Ref:
        return self.symbol(ref.value) if ref.kind == "name" else ref

    def name_of(self, ref: Ref) -> str:
        """The qualified name a reference resolves to, "" when it is no name."""
        resolved = self.resolve(ref)
        return resolved.value if resolved.kind == "name" else ""

    def is_model(self, qualname: str, trail: tuple[str, ...] = ()) -> bool:
        if qualname in self._model_memo:
            return self._model_memo[qualname]
        if qualname in DJANGO_MODEL_BASES:
            return True
        found = self.classes.get(qualname)
        if found is None or qualname in trail:
            return False
        _, cls = found
        result = False
        for base in cls.bases:
            resolved = self.resolve(base)
            if resolved.kind == "model" or self.is_model(resolved.value, (*trail, qualname)):
                result = True  # a "model" base comes from Model = get_model("app", "Model")
                break
            if (
                cls.has_fields
                and resolved.value not in self.classes
                and not _django_class(cls, self)
            ):
                result = True  # model fields on a class built on a third-party model base
                break
        if not result and ".models" in found[0].module and cls.bases:
            result = all(self._third_party_model_base(b) for b in cls.bases)
        self._model_memo[qualname] = result
        return result

    def _third_party_model_base(self, base: Ref) -> bool:
        """A base from another package's models module (``taggit.models.TaggedItemBase``)."""
        name = self.name_of(base)
        return ".models." in name and not name.startswith("django.") and not self.module_of(name)

    def is_relation_field(self, qualname: str, trail: tuple[str, ...] = ()) -> bool:
        """A class of the project built on a relation field (``class OrderKey(ForeignKey)``)."""
        found = self.classes.get(qualname)
        if found is None or qualname in trail:
            return False
        for base in found[1].bases:
            name = self.name_of(base)
            if name.rpartition(".")[2] in RELATION_KINDS and name.startswith(RELATION_HOMES):
                return True
            if self.is_relation_field(name, (*trail, qualname)):
                return True
        return False

    def is_appconfig(self, qualname: str, trail: tuple[str, ...] = ()) -> bool:
        if qualname in APPCONFIG_BASES:
            return True
        found = self.classes.get(qualname)
        if found is None or qualname in trail:
            return False
        return any(
            self.is_appconfig(self.name_of(b), (*trail, qualname)) or self._third_party_config(b)
            for b in found[1].bases
        )

    def _third_party_config(self, base: Ref) -> bool:
        """A base from another package's apps module or named like one
        (``modelsearch.apps.ModelSearchAppConfig``): the tree cannot show that it reaches
        Django's AppConfig, but an app configured on it has the ``label`` it declares."""
        name = self.name_of(base)
        home = name.rpartition(".")[0]
        from_apps = home == "apps" or home.endswith(".apps")
        return (from_apps or name.endswith("AppConfig")) and not self.module_of(name)


def _django_class(cls: ClassFact, r: _Resolver) -> bool:
    """A class built on one of Django's own non-model classes (Aggregate, Func, Manager...)."""
    return any(r.name_of(b).startswith("django.") for b in cls.bases)


def _app_of(module: str, app_names: list[tuple[str, str]]) -> str:
    for name, label in app_names:
        if module == name or module.startswith(name + "."):
            return label
    return ""


def discover_apps(r: _Resolver) -> list[App]:
    """Apps from AppConfig classes, INSTALLED_APPS entries and packages that hold models."""
    apps: dict[str, str] = {}
    for qualname, (_, cls) in sorted(r.classes.items()):
        attrs = dict(cls.attrs)
        if "name" in attrs and r.is_appconfig(qualname) and attrs["name"] not in apps:
            apps[attrs["name"]] = attrs.get("label") or attrs["name"].rsplit(".", 1)[-1]
    for f in r.facts:
        for entry in f.installed_apps:
            config = r.classes.get(entry)
            if config and "name" in dict(config[1].attrs):
                continue
            if entry in r.by_module and entry not in apps:
                apps[entry] = entry.rsplit(".", 1)[-1]
    for qualname, (f, cls) in sorted(r.classes.items()):
        meta = dict(cls.meta)
        if "app_label" in meta or meta.get("abstract") == "True":
            continue
        if r.is_model(qualname) and ".models" in f.module:
            package = (
                f.module[: f.module.index(".models")] if not f.module.startswith("models") else ""
            )
            # A package with its own models is an app of its own, as Django would label it
            # once installed (not its parent's label).
            if package and package not in apps:
                apps[package] = package.rsplit(".", 1)[-1]
    listed = _installed_names(r)
    labels: dict[str, str] = {}
    result = []
    for name in sorted(apps):
        label = apps[name]
        if label in labels:
            label = name.replace(".", "_")
        labels[label] = name
        result.append(App(label, name, not listed or name in listed))
    return result


def _installed_names(r: _Resolver) -> set[str]:
    """App names INSTALLED_APPS lists (an AppConfig path stands for its ``name``)."""
    return {_config_name(r, entry) or entry for f in r.facts for entry in f.installed_apps}


def _config_name(r: _Resolver, qualname: str, depth: int = 0) -> str:
    """The ``name`` an AppConfig class declares or inherits ("" if it is not a class here)."""
    found = r.classes.get(qualname)
    if found is None or depth > 8:
        return ""
    own = dict(found[1].attrs).get("name", "")
    return own or next(
        (n for b in found[1].bases if (n := _config_name(r, r.name_of(b), depth + 1))), ""
    )


@dataclass
class _Resolution:
    """What the resolution phases share: the resolver, what earlier phases found, the output."""

    r: _Resolver
    apps: list[App]
    module_app: dict[str, str]
    auth_user_model: str
    models: dict[str, Model] = field(default_factory=dict)
    by_qualname: dict[str, str] = field(default_factory=dict)
    abstract: set[str] = field(default_factory=set)
    lower_keys: dict[str, str] = field(default_factory=dict)
    table_owner: dict[str, list[str]] = field(default_factory=dict)
    relations: dict[str, dict[str, str]] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # task qualname -> module
    task_names: dict[str, str] = field(default_factory=dict)  # name= -> task qualname
    commands: dict[str, list[str]] = field(default_factory=dict)  # command name -> modules
    senders: dict[str, list[tuple[FileFacts, int, str]]] = field(default_factory=dict)
    includers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # urls <- (m, route)
    edges: list[Edge] = field(default_factory=list)
    external: list[Edge] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    endpoints: list[EndpointInfo] = field(default_factory=list)

    @classmethod
    def start(cls, facts: list[FileFacts]) -> _Resolution:
        r = _Resolver(facts)
        apps = discover_apps(r)
        app_names = sorted(((a.name, a.label) for a in apps), key=lambda p: -len(p[0]))
        return cls(
            r,
            apps,
            {f.module: _app_of(f.module, app_names) for f in facts},
            next((f.auth_user_model for f in facts if f.auth_user_model), "auth.User"),
        )

    def model_key(self, ref: Ref, context_label: str, self_key: str) -> str | None:
        """The model key a reference names, read in the app ``context_label``, or None."""
        ref = self.r.resolve(ref)
        if ref.kind == "model":
            if ref.value == "self":
                return self_key
            text = ref.value if "." in ref.value else f"{context_label}.{ref.value}"
            return self.lower_keys.get(text.lower())
        if ref == AUTH_USER:
            return self.lower_keys.get(self.auth_user_model.lower())
        return self.by_qualname.get(ref.value) if ref.kind == "name" else None

    def external_key(self, ref: Ref) -> str | None:
        """``app.Model`` for a reference to a model the project does not define, else None."""
        ref = self.r.resolve(ref)
        if ref.kind == "model":
            text = ref.value
            return text if "." in text and text.lower() not in self.lower_keys else None
        if ref == AUTH_USER:
            known = self.auth_user_model.lower() in self.lower_keys
            return None if known else self.auth_user_model
        name = ref.value if ref.kind == "name" else ""
        if not name or self.r.module_of(name) or ".models." not in name:
            return None
        package, _, model = name.rpartition(".models.")
        return f"{package.rpartition('.')[2]}.{model}" if "." not in model else None

    def prefixes(self, module: str, trail: tuple[str, ...] = ()) -> list[str]:
        """The URL prefixes ``include()`` puts before the routes of a URLconf module."""
        found = [
            _join_route(prefix, route)
            for includer, route in self.includers.get(module, [])
            if includer not in trail
            for prefix in self.prefixes(includer, (*trail, module))
        ]
        return sorted(set(found)) or [""]

    def add(
        self,
        source: str,
        target: str,
        kind: EdgeKind,
        file: str,
        line: int,
        detail: str,
        scale: float = 1.0,
    ) -> None:
        self.edges.append(Edge(source, target, kind, file, line, detail, scale))


def _find_models(x: _Resolution) -> None:
    """Concrete model classes with their keys and tables; abstract bases are set aside."""
    r = x.r
    for qualname, (f, cls) in sorted(r.classes.items()):
        if not r.is_model(qualname):
            continue
        meta = dict(cls.meta)
        if meta.get("abstract") == "True":
            x.abstract.add(qualname)
            continue
        label = meta.get("app_label") or x.module_app.get(f.module) or _inherited_label(r, cls)
        if not label:
            parts = f.module.split(".")
            label = parts[-2] if parts[-1] == "models" and len(parts) > 1 else parts[-1]
        key = f"{label}.{cls.name}"
        if key in x.models:
            kept = x.models[key]
            x.notes.append(
                Note(
                    f.path, cls.line, f"model {key} is defined twice; kept {kept.path}:{kept.line}"
                )
            )
            continue
        if not cls.has_fields and all(r._third_party_model_base(b) for b in cls.bases):
            x.notes.append(
                Note(
                    f.path,
                    cls.line,
                    f"{cls.name} counted as model {key}: it builds only on third-party model "
                    f"bases ({', '.join(r.name_of(b) for b in cls.bases)})",
                )
            )
        table = meta.get("db_table") or f"{label}_{cls.name.lower()}"
        x.models[key] = Model(key, qualname, f.module, f.path, cls.line, table, label)
        x.by_qualname[qualname] = key
    x.lower_keys = {k.lower(): k for k in x.models}


def _proxy_tables(x: _Resolution) -> None:
    """A proxy model reads and writes its parent's table."""
    for qualname, key in list(x.by_qualname.items()):
        cls = x.r.classes[qualname][1]
        if dict(cls.meta).get("proxy") != "True":
            continue
        parent = next(
            (p for b in cls.bases if (p := x.model_key(b, "", key)) and p != key),
            None,
        )
        if parent:
            m = x.models[key]
            x.models[key] = Model(
                m.key, m.qualname, m.module, m.path, m.line, x.models[parent].table, m.app
            )


def _model_edges(x: _Resolution) -> None:
    """defines, relation, inherits, abstract_base and shared_table edges."""
    r = x.r
    for key, m in sorted(x.models.items()):
        x.table_owner.setdefault(m.table.lower(), []).append(key)
        f, cls = r.classes[m.qualname]
        x.add(f"module:{m.module}", f"model:{key}", "defines", f.path, m.line, f"class {cls.name}")
        for base_fact, relation, named in _related_models(r, m.qualname, x.abstract):
            target = x.model_key(named, m.app, key)
            outside = None if target else x.external_key(named)
            if outside:
                x.external.append(
                    Edge(
                        f"model:{key}",
                        f"external:{outside}",
                        "relation",
                        base_fact.path,
                        relation.line,
                        relation.detail,
                    )
                )
            if target and target != key:
                x.add(
                    f"model:{key}",
                    f"model:{target}",
                    "relation",
                    base_fact.path,
                    relation.line,
                    relation.detail,
                )
        for base in cls.bases:
            resolved = r.resolve(base)
            parent = (
                x.model_key(resolved, m.app, key)
                if resolved.kind == "model"
                else x.by_qualname.get(resolved.value)
            )
            detail = f"class {cls.name}({base.value.rsplit('.', 1)[-1]})"
            if parent and parent != key:
                x.add(f"model:{key}", f"model:{parent}", "inherits", f.path, m.line, detail)
            elif resolved.value in x.abstract:
                base_module = r.classes[resolved.value][0].module
                if base_module != m.module:
                    x.add(
                        f"model:{key}", f"module:{base_module}", "abstract_base", f.path, m.line,
                        detail,
                    )  # fmt: skip
    for table, owners in sorted(x.table_owner.items()):
        for other in owners[1:]:
            m = x.models[other]
            x.add(
                f"model:{other}",
                f"model:{owners[0]}",
                "shared_table",
                m.path,
                m.line,
                f"db_table {table} is also used by {owners[0]}",
            )


def _layout_edges(x: _Resolution) -> None:
    """Code inside an app leans towards that app's models: the team's layout is a hint."""
    app_models: dict[str, list[Model]] = {}
    for m in x.models.values():
        app_models.setdefault(m.app, []).append(m)
    for f in x.r.facts:
        own_models = app_models.get(x.module_app.get(f.module, ""), [])
        if f.parse_error is None and not f.is_migration and not f.is_package:
            for m in own_models:
                if m.module != f.module:
                    x.add(
                        f"module:{f.module}",
                        f"model:{m.key}",
                        "same_app",
                        f.path,
                        1,
                        f"module of app {m.app}",
                        1 / len(own_models),
                    )


def _index_code(x: _Resolution) -> None:
    """Relation fields for lookups, Celery tasks, and where custom signals are sent."""
    x.relations = _relation_fields(x.r, x.models, x.abstract, x.model_key)
    for f in x.r.facts:
        package, _, command = f.module.rpartition(".")
        if package.endswith(".management.commands") and not f.is_package:
            x.commands.setdefault(command, []).append(f.module)
        for t in f.tasks:
            x.tasks[t.qualname] = f.module
            if t.name:
                x.task_names[t.name] = t.qualname
        for inc in f.includes:
            target = _included_module(x.r, inc)
            if target and target != f.module:
                x.includers.setdefault(target, []).append((f.module, inc.route))
        for use in f.uses:
            if use.kind == "signal_send":
                signal = x.r.name_of(use.target)
                x.senders.setdefault(signal, []).append((f, use.line, use.detail))


def _code_edges(x: _Resolution, f: FileFacts) -> None:
    """Everything one file's code depends on: imports, uses, receivers, routes, migrations."""
    source = f"module:{f.module}"
    for note in f.unresolved:
        x.notes.append(Note(f.path, note.line, note.value))
    for imp in f.imports:
        target = _import_target(x.r, imp, x.apps)
        if target and target != f.module:
            x.add(source, f"module:{target}", "import", f.path, imp.line, imp.detail)
    for use in f.uses:
        x.edges.extend(_use_edges(x, f, use))
    for rec in f.receivers:
        _receiver_edges(x, f, rec)
    for ep in f.endpoints:
        _endpoint_edges(x, f, ep)
    for inc in f.includes:  # a URLconf routing into another's: no import needed for that
        target = _included_module(x.r, inc)
        if target and target != f.module:
            x.add(source, f"module:{target}", "route", f.path, inc.line, inc.detail)
    own = x.module_app.get(f.module, "")
    for dep in f.migration_deps:
        label = dep.app or x.auth_user_model.split(".")[0]
        if own and label != own and any(a.label == label for a in x.apps):
            x.add(f"app:{own}", f"app:{label}", "migration", f.path, dep.line, dep.detail)


def _receiver_edges(x: _Resolution, f: FileFacts, rec: Receiver) -> None:
    """A receiver depends on the sender model and on every module sending a custom signal."""
    signal = x.r.name_of(rec.signal)
    handler_module = x.r.module_of(rec.handler) or f.module
    handler_source = f"module:{handler_module}"
    if not signal or (not signal.startswith(DJANGO_SIGNALS) and signal not in x.r.known):
        return
    if rec.sender is not None and not _on_self(rec.sender):
        sender = x.model_key(rec.sender, x.module_app.get(f.module, ""), "")
        if sender:
            x.add(handler_source, f"model:{sender}", "signal", f.path, rec.line, rec.detail)
    for sender_file, line, detail in x.senders.get(signal, []):
        if sender_file.module != handler_module:
            x.add(
                handler_source,
                f"module:{sender_file.module}",
                "signal",
                f.path,
                rec.line,
                f"{rec.detail}  (sent at {sender_file.path}:{line}: {detail})",
            )


def _endpoint_edges(x: _Resolution, f: FileFacts, ep: Endpoint) -> None:
    resolved = x.r.resolve(ep.view)
    view = resolved.value
    view_module = x.r.module_of(view) if resolved.kind == "name" else None
    touched = _view_models(x, view, view_module)
    for prefix in x.prefixes(f.module):
        x.endpoints.append(
            EndpointInfo(
                _join_route(prefix, ep.route),
                view,
                view_module or f.module,
                f.path,
                ep.line,
                touched,
            )
        )
    if view_module and view_module != f.module:
        x.add(f"module:{f.module}", f"module:{view_module}", "route", f.path, ep.line, ep.detail)


def _included_module(r: _Resolver, inc: Endpoint) -> str | None:
    """The project URLconf module an ``include()`` names, by string or by name."""
    return r.module_of(inc.view.value if inc.view.kind == "text" else r.name_of(inc.view))


def _join_route(prefix: str, route: str) -> str:
    """A route under an include() prefix; regex anchors of the inner route are dropped."""
    if not prefix:
        return route
    return prefix.rstrip("$") + (route[1:] if route.startswith("^") else route)


def resolve_project(facts: list[FileFacts]) -> Project:
    """Turn per-file facts into apps, models and evidence-carrying edges, phase by phase."""
    x = _Resolution.start(facts)
    _find_models(x)
    _proxy_tables(x)
    _model_edges(x)
    _layout_edges(x)
    _index_code(x)
    for f in facts:
        if f.parse_error is None:
            _code_edges(x, f)
    parse_errors = tuple(
        Note(f.path, f.parse_error.line, f.parse_error.value) for f in facts if f.parse_error
    )
    return Project(
        apps=tuple(x.apps),
        models=tuple(x.models[k] for k in sorted(x.models)),
        module_paths={f.module: f.path for f in facts},
        module_app=x.module_app,
        edges=tuple(sorted(set(x.edges), key=_edge_key)),
        endpoints=tuple(sorted(set(x.endpoints), key=lambda e: (e.file, e.line, e.route))),
        tasks=tuple(sorted(x.tasks.items())),
        unresolved=tuple(sorted(set(x.notes), key=lambda n: (n.file, n.line, n.message))),
        parse_errors=tuple(sorted(parse_errors, key=lambda n: (n.file, n.line))),
        settings_modules=tuple(sorted(f.module for f in facts if f.installed_apps)),
        external=tuple(sorted(set(x.external), key=_edge_key)),
    )


def _view_models(x: _Resolution, view: str, module: str | None) -> tuple[str, ...]:
    """Models used inside a view function or class (its methods and attributes included)."""
    facts = x.r.by_module.get(module) if module else None
    if module is None or facts is None or not view.startswith(f"{module}."):
        return ()
    name = view[len(module) + 1 :]
    label = x.module_app.get(module, "")
    found: set[str] = set()
    for use in facts.uses:
        if use.kind in ("read", "write") and (
            use.scope == name or use.scope.startswith(f"{name}.")
        ):
            key = x.model_key(use.target, label, "")
            if key:
                found.add(key)
    return tuple(sorted(found))


def _edge_key(e: Edge) -> tuple[str, str, str, str, int, str]:
    return (e.source, e.target, e.kind, e.file, e.line, e.detail)


def _inherited_label(r: _Resolver, cls: ClassFact) -> str:
    for base in cls.bases:
        found = r.classes.get(r.name_of(base))
        if found:
            label = dict(found[1].meta).get("app_label") or _inherited_label(r, found[1])
            if label:
                return label
    return ""


def _relations_with_inherited(
    r: _Resolver, qualname: str, abstract: set[str], trail: tuple[str, ...] = ()
) -> Iterator[tuple[FileFacts, ClassFact, Relation]]:
    """A model's own relation fields plus those declared on its abstract ancestors."""
    f, cls = r.classes[qualname]
    for relation in cls.relations:
        if not relation.field_class or r.is_relation_field(relation.field_class):
            yield f, cls, relation
    for base in cls.bases:
        resolved = r.name_of(base)
        if resolved in abstract and resolved not in trail:
            yield from _relations_with_inherited(r, resolved, abstract, (*trail, qualname))


def _related_models(
    r: _Resolver, qualname: str, abstract: set[str]
) -> Iterator[tuple[FileFacts, Relation, Ref]]:
    """Every model a model's relation fields name: each target, and a ``through=`` model."""
    for f, _, relation in _relations_with_inherited(r, qualname, abstract):
        yield f, relation, relation.target
        if relation.through is not None:
            yield f, relation, relation.through


def _relation_fields(
    r: _Resolver, models: Mapping[str, Model], abstract: set[str], model_key: ModelKey
) -> dict[str, dict[str, str]]:
    """For lookups across relations: model key -> {lookup name: model key}, both ways.

    The reverse name is the related_query_name or related_name, else the model's name in
    lower case, as Django names reverse lookups, and ``<model>_set``, the accessor
    ``prefetch_related`` takes.
    """
    fields: dict[str, dict[str, str]] = {}
    for key, m in sorted(models.items()):
        for _, _, relation in _relations_with_inherited(r, m.qualname, abstract):
            target = model_key(relation.target, m.app, key)
            if target:
                fields.setdefault(key, {})[relation.field] = target
                app_label, _, default = key.lower().partition(".")
                names = (
                    [_formatted_related_name(relation.related_name, app_label, default)]
                    if relation.related_name
                    else [default, f"{default}_set"]
                )
                for reverse in names:
                    if "+" not in reverse and "%" not in reverse:
                        fields.setdefault(target, {}).setdefault(reverse, key)
    return fields


def _formatted_related_name(name: str, app_label: str, model_name: str) -> str:
    """A related name as Django formats it for each concrete model (the way an abstract
    base names one per subclass): ``%(app_label)s``, ``%(class)s`` and ``%(model_name)s``."""
    for placeholder, value in (
        ("%(app_label)s", app_label),
        ("%(class)s", model_name),
        ("%(model_name)s", model_name),
    ):
        name = name.replace(placeholder, value)
    return name


def _on_self(ref: Ref) -> bool:
    return ref.kind == "unknown" and ref.value.partition(".")[0] in SELF_NAMES


def _import_target(r: _Resolver, imp: Import, apps: list[App]) -> str | None:
    if imp.app_relative:
        # Class loaders like django-oscar's get_class("order.utils", ...) name app-relative
        # modules; map the first part to an app by its label or last name part.
        head, _, rest = imp.target.partition(".")
        for app in apps:
            if head in (app.label, app.name.rsplit(".", 1)[-1]):
                candidate = f"{app.name}.{rest}" if rest else app.name
                module = r.module_of(candidate)
                if module:
                    return module
        return None
    return r.module_of(imp.target)


def _use_edges(x: _Resolution, f: FileFacts, use: Use) -> list[Edge]:
    """The edges one use stands for: module -> model, or module -> task module."""
    source = f"module:{f.module}"
    label = x.module_app.get(f.module, "")
    if use.kind in ("read", "write", "admin"):
        if _on_self(use.target):
            return []
        key = x.model_key(use.target, label, "")
        if key:
            return [Edge(source, f"model:{key}", use.kind, f.path, use.line, use.detail)]
        outside = x.external_key(use.target)
        if outside:
            x.external.append(
                Edge(source, f"external:{outside}", use.kind, f.path, use.line, use.detail)
            )
        elif use.target.kind == "unknown" and use.target.value:
            x.notes.append(
                Note(
                    f.path,
                    use.line,
                    f"cannot tell which model {use.target.value} is: a variable or "
                    "parameter, not an import or class of this module",
                )
            )
        return []
    if use.kind == "lookup":
        ref, lookup = use.target, use.lookup
        key = None if _on_self(ref) else x.model_key(ref, label, "")
        found: list[Edge] = []
        for part in lookup.split("__"):
            key = x.relations.get(key or "", {}).get(part)
            if key is None:
                break
            found.append(Edge(source, f"model:{key}", "read", f.path, use.line, use.detail))
        return found
    if use.kind == "raw_sql":
        owners = x.table_owner.get(use.target.value, [])
        return (
            [Edge(source, f"model:{owners[0]}", "raw_sql", f.path, use.line, use.detail)]
            if owners
            else []
        )
    if use.kind == "task_call":
        task = x.r.name_of(use.target)
        if task in x.tasks and x.tasks[task] != f.module:
            return [Edge(source, f"module:{x.tasks[task]}", "task", f.path, use.line, use.detail)]
        return []
    if use.kind == "command":  # Django's own commands (migrate...) are no project module
        return [
            Edge(source, f"module:{module}", "import", f.path, use.line, use.detail)
            for module in x.commands.get(use.target.value, [])
            if module != f.module
        ]
    if use.kind == "send_task":
        name = use.target.value
        named = x.task_names.get(name) or (name if name in x.tasks else None)
        if named and x.tasks[named] != f.module:
            return [Edge(source, f"module:{x.tasks[named]}", "task", f.path, use.line, use.detail)]
        if named is None:
            x.notes.append(Note(f.path, use.line, f"task {name!r} is called by name; none found"))
    return []
