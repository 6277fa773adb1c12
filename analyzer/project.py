"""Resolve every file's facts into one project: apps, models, and typed dependency edges.

Nodes are ``model:app_label.Model`` (the unit that must have exactly one owner) and
``module:dotted.name`` (the code that uses models); app-level facts (migrations) use
``app:label``. Every edge carries the file and line that justify it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .facts import ClassFact, FileFacts, Relation, Use

# (reference, app label it appears in, key of the model it appears in) -> model key
ModelKey = Callable[[str, str, str], str | None]

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
RECEIVER_SKIP = ("?self", "?cls")


@dataclass(frozen=True)
class App:
    label: str
    name: str


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
    kind: str
    file: str
    line: int
    detail: str
    scale: float = 1.0  # multiplies the kind's weight (spread or frequency)


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

    def symbol(self, qualname: str, depth: int = 0) -> str:
        """Follow re-exports (``from .x import Y`` in a package) to where a name is defined."""
        if qualname in self.known or depth > 6 or not qualname or qualname[0] == "?":
            return qualname
        module = self.module_of(qualname)
        if module is None or module == qualname:
            return qualname
        head, _, rest = qualname[len(module) + 1 :].partition(".")
        target = self.aliases.get(module, {}).get(head)
        if target and target != qualname:
            return self.symbol(f"{target}.{rest}" if rest else target, depth + 1)
        for star in self.by_module[module].star_imports:
            candidate = self.symbol(f"{star}.{head}", depth + 1)
            if candidate in self.known:
                return f"{candidate}.{rest}" if rest else candidate
        return qualname

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
            resolved = self.symbol(base)
            if resolved.startswith("str:") or self.is_model(resolved, (*trail, qualname)):
                result = True  # "str:" bases come from Model = get_model("app", "Model")
                break
            if cls.has_fields and resolved not in self.classes:
                result = True  # model fields on a class built on a third-party model base
                break
        self._model_memo[qualname] = result
        return result

    def is_appconfig(self, qualname: str, trail: tuple[str, ...] = ()) -> bool:
        if qualname in APPCONFIG_BASES:
            return True
        found = self.classes.get(qualname)
        if found is None or qualname in trail:
            return False
        return any(self.is_appconfig(self.symbol(b), (*trail, qualname)) for b in found[1].bases)


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
    for qualname, (f, _) in sorted(r.classes.items()):
        if r.is_model(qualname) and ".models" in f.module:
            package = (
                f.module[: f.module.index(".models")] if not f.module.startswith("models") else ""
            )
            if package and not any(package == n or package.startswith(n + ".") for n in apps):
                apps[package] = package.rsplit(".", 1)[-1]
    labels: dict[str, str] = {}
    result = []
    for name in sorted(apps):
        label = apps[name]
        if label in labels:
            label = name.replace(".", "_")
        labels[label] = name
        result.append(App(label, name))
    return result


def resolve_project(facts: list[FileFacts]) -> Project:
    """Turn per-file facts into apps, models and evidence-carrying edges."""
    r = _Resolver(facts)
    apps = discover_apps(r)
    app_names = sorted(((a.name, a.label) for a in apps), key=lambda p: -len(p[0]))
    module_app = {f.module: _app_of(f.module, app_names) for f in facts}
    settings_modules = sorted(f.module for f in facts if f.installed_apps)
    auth_user_model = next((f.auth_user_model for f in facts if f.auth_user_model), "auth.User")
    notes: list[Note] = []
    edges: list[Edge] = []

    # Models: concrete classes only; abstract bases lend their relations to subclasses.
    models: dict[str, Model] = {}
    by_qualname: dict[str, str] = {}
    abstract: set[str] = set()
    for qualname, (f, cls) in sorted(r.classes.items()):
        if not r.is_model(qualname):
            continue
        meta = dict(cls.meta)
        if meta.get("abstract") == "True":
            abstract.add(qualname)
            continue
        label = meta.get("app_label") or module_app.get(f.module) or _inherited_label(r, cls)
        if not label:
            parts = f.module.split(".")
            label = parts[-2] if parts[-1] == "models" and len(parts) > 1 else parts[-1]
        key = f"{label}.{cls.name}"
        if key in models:
            notes.append(
                Note(
                    f.path,
                    cls.line,
                    f"model {key} is defined twice; kept {models[key].path}:{models[key].line}",
                )
            )
            continue
        table = meta.get("db_table") or f"{label}_{cls.name.lower()}"
        models[key] = Model(key, qualname, f.module, f.path, cls.line, table, label)
        by_qualname[qualname] = key
    lower_keys = {k.lower(): k for k in models}

    def model_key(ref: str, context_label: str, self_key: str) -> str | None:
        if ref.startswith("str:"):
            text = ref[4:]
            if text == "self":
                return self_key
            if "." not in text:
                text = f"{context_label}.{text}"
            return lower_keys.get(text.lower())
        if ref == "setting:AUTH_USER_MODEL":
            return lower_keys.get(auth_user_model.lower())
        return by_qualname.get(r.symbol(ref))

    for qualname, key in list(by_qualname.items()):
        cls = r.classes[qualname][1]
        if dict(cls.meta).get("proxy") == "True":  # a proxy reads and writes its parent's table
            parent = next(
                (p for b in cls.bases if (p := model_key(r.symbol(b), "", key)) and p != key), None
            )
            if parent:
                m = models[key]
                models[key] = Model(
                    m.key, m.qualname, m.module, m.path, m.line, models[parent].table, m.app
                )

    table_owner: dict[str, list[str]] = {}
    for key, m in sorted(models.items()):
        table_owner.setdefault(m.table.lower(), []).append(key)
        f, cls = r.classes[m.qualname]
        edges.append(
            Edge(
                f"module:{m.module}", f"model:{key}", "defines", f.path, m.line, f"class {cls.name}"
            )
        )
        for base_fact, _, relation in _relations_with_inherited(r, m.qualname, abstract):
            target = model_key(relation.target, m.app, key)
            if target and target != key:
                edges.append(
                    Edge(
                        f"model:{key}",
                        f"model:{target}",
                        "relation",
                        base_fact.path,
                        relation.line,
                        relation.detail,
                    )
                )
        for base in cls.bases:
            resolved = r.symbol(base)
            parent = (
                model_key(resolved, m.app, key)
                if resolved.startswith("str:")
                else by_qualname.get(resolved)
            )
            if parent and parent != key:
                edges.append(
                    Edge(
                        f"model:{key}",
                        f"model:{parent}",
                        "inherits",
                        f.path,
                        m.line,
                        f"class {cls.name}({base.rsplit('.', 1)[-1]})",
                    )
                )
            elif resolved in abstract:
                base_module = r.classes[resolved][0].module
                if base_module != m.module:
                    edges.append(
                        Edge(
                            f"model:{key}",
                            f"module:{base_module}",
                            "abstract_base",
                            f.path,
                            m.line,
                            f"class {cls.name}({base.rsplit('.', 1)[-1]})",
                        )
                    )
    for table, owners in sorted(table_owner.items()):
        for other in owners[1:]:
            m = models[other]
            edges.append(
                Edge(
                    f"model:{other}",
                    f"model:{owners[0]}",
                    "shared_table",
                    m.path,
                    m.line,
                    f"db_table {table} is also used by {owners[0]}",
                )
            )

    # Code inside an app leans towards that app's models: the team's current layout is a hint.
    app_models: dict[str, list[Model]] = {}
    for m in models.values():
        app_models.setdefault(m.app, []).append(m)
    for f in facts:
        own_models = app_models.get(module_app.get(f.module, ""), [])
        if f.parse_error is None and not f.migration_deps and not f.is_package:
            for m in own_models:
                if m.module != f.module:
                    edges.append(
                        Edge(
                            f"module:{f.module}",
                            f"model:{m.key}",
                            "same_app",
                            f.path,
                            1,
                            f"module of app {m.app}",
                            1 / len(own_models),
                        )
                    )
    relations_by_model = _relation_fields(r, models, abstract, model_key)
    tasks = {t.qualname: f.module for f in facts for t in f.tasks}
    task_names = {t.name: t.qualname for f in facts for t in f.tasks if t.name}
    signal_senders: dict[str, list[tuple[FileFacts, int, str]]] = {}
    for f in facts:
        for use in f.uses:
            if use.kind == "signal_send":
                signal_senders.setdefault(r.symbol(use.target), []).append(
                    (f, use.line, use.detail)
                )
    endpoints: list[EndpointInfo] = []
    for f in facts:
        source = f"module:{f.module}"
        if f.parse_error is not None:
            continue
        for note in f.unresolved:
            notes.append(Note(f.path, note.line, note.value))
        for imp in f.imports:
            target = _import_target(r, imp.value, apps)
            if target and target != f.module:
                edges.append(
                    Edge(source, f"module:{target}", "import", f.path, imp.line, imp.detail)
                )
        for use in f.uses:
            edges.extend(
                _use_edges(
                    r,
                    f,
                    use,
                    module_app.get(f.module, ""),
                    model_key,
                    table_owner,
                    tasks,
                    task_names,
                    relations_by_model,
                    notes,
                )
            )
        for rec in f.receivers:
            signal = r.symbol(rec.signal)
            handler_module = r.module_of(rec.handler) or f.module
            handler_source = f"module:{handler_module}"
            is_django = signal.startswith(DJANGO_SIGNALS)
            if not is_django and signal not in r.known:
                continue
            if rec.sender and not rec.sender.startswith(RECEIVER_SKIP):
                sender = model_key(rec.sender, module_app.get(f.module, ""), "")
                if sender:
                    edges.append(
                        Edge(
                            handler_source,
                            f"model:{sender}",
                            "signal",
                            f.path,
                            rec.line,
                            rec.detail,
                        )
                    )
            for sender_file, line, detail in signal_senders.get(signal, []):
                if sender_file.module != handler_module:
                    edges.append(
                        Edge(
                            handler_source,
                            f"module:{sender_file.module}",
                            "signal",
                            f.path,
                            rec.line,
                            f"{rec.detail}  (sent at {sender_file.path}:{line}: {detail})",
                        )
                    )
        for ep in f.endpoints:
            view = r.symbol(ep.view)
            view_module = r.module_of(view) if not view.startswith("?") else None
            touched = _view_models(r, view, view_module, module_app, model_key)
            endpoints.append(
                EndpointInfo(
                    ep.route, view.lstrip("?"), view_module or f.module, f.path, ep.line, touched
                )
            )
            if view_module and view_module != f.module:
                edges.append(
                    Edge(source, f"module:{view_module}", "route", f.path, ep.line, ep.detail)
                )
        if f.migration_deps:
            own = module_app.get(f.module, "")
            for dep in f.migration_deps:
                label = dep.value
                if label == "setting:AUTH_USER_MODEL":
                    label = auth_user_model.split(".")[0]
                if own and label != own and any(a.label == label for a in apps):
                    edges.append(
                        Edge(
                            f"app:{own}", f"app:{label}", "migration", f.path, dep.line, dep.detail
                        )
                    )
    parse_errors = tuple(
        Note(f.path, f.parse_error.line, f.parse_error.value) for f in facts if f.parse_error
    )
    return Project(
        apps=tuple(apps),
        models=tuple(models[k] for k in sorted(models)),
        module_paths={f.module: f.path for f in facts},
        module_app=module_app,
        edges=tuple(sorted(set(edges), key=_edge_key)),
        endpoints=tuple(sorted(set(endpoints), key=lambda e: (e.file, e.line, e.route))),
        tasks=tuple(sorted(tasks.items())),
        unresolved=tuple(sorted(set(notes), key=lambda n: (n.file, n.line, n.message))),
        parse_errors=tuple(sorted(parse_errors, key=lambda n: (n.file, n.line))),
        settings_modules=tuple(settings_modules),
    )


def _view_models(
    r: _Resolver, view: str, module: str | None, module_app: Mapping[str, str], model_key: ModelKey
) -> tuple[str, ...]:
    """Models used inside a view function or class (its methods and attributes included)."""
    facts = r.by_module.get(module) if module else None
    if module is None or facts is None or not view.startswith(f"{module}."):
        return ()
    name = view[len(module) + 1 :]
    label = module_app.get(module, "")
    found: set[str] = set()
    for use in facts.uses:
        if use.kind in ("read", "write") and (
            use.scope == name or use.scope.startswith(f"{name}.")
        ):
            key = model_key(use.target, label, "")
            if key:
                found.add(key)
    return tuple(sorted(found))


def _edge_key(e: Edge) -> tuple[str, str, str, str, int, str]:
    return (e.source, e.target, e.kind, e.file, e.line, e.detail)


def _inherited_label(r: _Resolver, cls: ClassFact) -> str:
    for base in cls.bases:
        found = r.classes.get(r.symbol(base))
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
        yield f, cls, relation
    for base in cls.bases:
        resolved = r.symbol(base)
        if resolved in abstract and resolved not in trail:
            yield from _relations_with_inherited(r, resolved, abstract, (*trail, qualname))


def _relation_fields(
    r: _Resolver, models: Mapping[str, Model], abstract: set[str], model_key: ModelKey
) -> dict[str, dict[str, str]]:
    """For lookups across relations: model key -> {lookup name: model key}, both ways.

    The reverse name is the related_query_name or related_name, else the model's name in
    lower case, as Django names reverse lookups.
    """
    fields: dict[str, dict[str, str]] = {}
    for key, m in sorted(models.items()):
        for _, _, relation in _relations_with_inherited(r, m.qualname, abstract):
            target = model_key(relation.target, m.app, key)
            if target:
                fields.setdefault(key, {})[relation.field] = target
                reverse = relation.related_name or key.split(".", 1)[1].lower()
                if "+" not in reverse and "%" not in reverse:
                    fields.setdefault(target, {}).setdefault(reverse, key)
    return fields


def _import_target(r: _Resolver, value: str, apps: list[App]) -> str | None:
    if value.startswith("label:"):
        # Class loaders like django-oscar's get_class("order.utils", ...) name app-relative
        # modules; map the first part to an app by its label or last name part.
        head, _, rest = value[6:].partition(".")
        for app in apps:
            if head in (app.label, app.name.rsplit(".", 1)[-1]):
                candidate = f"{app.name}.{rest}" if rest else app.name
                module = r.module_of(candidate)
                if module:
                    return module
        return None
    return r.module_of(value)


def _use_edges(
    r: _Resolver,
    f: FileFacts,
    use: Use,
    label: str,
    model_key: ModelKey,
    table_owner: Mapping[str, list[str]],
    tasks: Mapping[str, str],
    task_names: Mapping[str, str],
    relations: Mapping[str, dict[str, str]],
    notes: list[Note],
) -> list[Edge]:
    """The edges one use stands for: module -> model, or module -> task module."""
    source = f"module:{f.module}"
    if use.kind in ("read", "write", "admin"):
        if use.target.startswith(RECEIVER_SKIP):
            return []
        key = model_key(use.target, label, "")
        if key:
            return [Edge(source, f"model:{key}", use.kind, f.path, use.line, use.detail)]
        if use.target.startswith("?") and len(use.target) > 1:
            notes.append(
                Note(
                    f.path,
                    use.line,
                    f"cannot tell which model {use.target[1:]} is: a variable or "
                    "parameter, not an import or class of this module",
                )
            )
        return []
    if use.kind == "lookup":
        ref, _, lookup = use.target.partition("#")
        key = None if ref.startswith(RECEIVER_SKIP) else model_key(ref, label, "")
        found: list[Edge] = []
        for part in lookup.split("__"):
            key = relations.get(key or "", {}).get(part)
            if key is None:
                break
            found.append(Edge(source, f"model:{key}", "read", f.path, use.line, use.detail))
        return found
    if use.kind == "raw_sql":
        owners = table_owner.get(use.target[6:], [])
        return (
            [Edge(source, f"model:{owners[0]}", "raw_sql", f.path, use.line, use.detail)]
            if owners
            else []
        )
    if use.kind == "task_call":
        task = r.symbol(use.target)
        if task in tasks and tasks[task] != f.module:
            return [Edge(source, f"module:{tasks[task]}", "task", f.path, use.line, use.detail)]
        return []
    if use.kind == "send_task":
        name = use.target[4:]
        named = task_names.get(name) or (name if name in tasks else None)
        if named and tasks[named] != f.module:
            return [Edge(source, f"module:{tasks[named]}", "task", f.path, use.line, use.detail)]
        if named is None:
            notes.append(Note(f.path, use.line, f"send_task({name!r}) names no task found here"))
    return []
