"""Extract Django facts from one file's source with libcst, in a single pass.

Why a code-generation pass instead of a visitor: libcst's metadata (positions, qualified names)
costs several times the parse itself. Regenerating the code walks every node once, in source
order, and counting newlines as tokens are emitted gives each node's line for a fraction of
that cost. Names are qualified with the file's own imports; nothing is imported or executed.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from .codegen import LineCounter, walk
from .facts import (
    AUTH_USER,
    MODEL_FIELD_HOMES,
    RELATION_HOMES,
    RELATION_KINDS,
    UNKNOWN,
    ClassFact,
    Endpoint,
    FileFacts,
    Import,
    Located,
    MigrationDep,
    Receiver,
    Ref,
    Relation,
    Task,
    Use,
    UseKind,
)

EMPTY_MODULE = cst.Module(body=[])  # renders a lone node's code
MANAGERS = {"objects", "_default_manager", "_base_manager"}
WRITE_METHODS = {
    "create",
    "update",
    "delete",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
    "add",
    "remove",
    "clear",
    "set",
}
LOOKUP_METHODS = {
    "filter",
    "exclude",
    "get",
    "select_related",
    "prefetch_related",
    "order_by",
    "values",
    "values_list",
    "annotate",
    "alias",
    "aggregate",
    "get_or_create",
    "update_or_create",
}
# Django expressions whose arguments name lookups: Q(a__b=1), F("a__b"), Sum("a__b"), ...
# (not OuterRef: its lookups are the outer query's, not those of the chain holding it)
LOOKUP_EXPRESSIONS = {
    "Q", "Prefetch", "F", "Count", "Sum", "Avg", "Max", "Min", "StdDev",
    "Variance", "Coalesce", "Greatest", "Least", "ArrayAgg", "StringAgg", "JSONBAgg",
    "BoolAnd", "BoolOr", "BitAnd", "BitOr", "Case", "When", "ExpressionWrapper", "Cast",
    "FilteredRelation",
}  # fmt: skip
JOINING_CALLS = {"select_related", "prefetch_related", "Prefetch"}  # their names are relations
TASK_CALLS = {"delay", "apply_async", "s", "si", "signature"}
TASK_BY_NAME = {"send_task", "signature", "Signature"}  # app.send_task("name"), signature("name")
URL_FUNCS = {"path", "re_path", "url"}
RAW_SQL_CALLS = {"execute", "executemany", "raw", "RawSQL", "extra"}
DYNAMIC_IMPORTS = {"import_module", "import_string"}
CLASS_LOADERS = {"get_class", "get_classes", "get_model_class"}
SETTINGS_NAMES = {"INSTALLED_APPS", "AUTH_USER_MODEL"}
TABLE_KEYWORD_RE = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|USING|TRUNCATE|COPY)\b", re.IGNORECASE
)
# One name as SQL writes it: plain, "quoted", `quoted` (MySQL) or [quoted] (SQL Server).
SQL_NAME = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_$]*)'
# A table after one of those keywords or after a comma in a FROM list: PostgreSQL's ONLY
# (no inheritance children) or LATERAL maybe, its name, maybe schema-qualified (public.t,
# "public"."t"), an optional alias (t AS x, t x), then a comma when another table follows
# (FROM a x, b y). USING (col) after a JOIN names no table, and matches nothing.
# The name may sit in parentheses, FROM (t) x, not to be confused with a subquery's SELECT.
TABLE_REF_RE = re.compile(
    rf"\s*(?:\(\s*)*(?:(?:ONLY|LATERAL|TABLE)\s+)*(?!(?:SELECT|VALUES|WITH)\b)(?P<name>{SQL_NAME}(?:\s*\.\s*{SQL_NAME})*)(?:\s*\))*(?:\s+(?:AS\s+)?{SQL_NAME})?(?P<more>\s*,)?",
    re.IGNORECASE,
)
SQL_NAME_RE = re.compile(SQL_NAME)
SQL_COMMENT_RE = re.compile(r"/\*.*?\*/|--[^\n]*", re.DOTALL)
COMPUTED = "?"  # a computed part of SQL text: an f-string's {...}, a name added to a literal
COMPUTED_TABLE_RE = re.compile(TABLE_KEYWORD_RE.pattern + r"\s*\(?\s*\?", re.IGNORECASE)
UNPACKABLE = (cst.Dict, cst.List, cst.Tuple, cst.Set)
Bound = Callable[[str], "cst.BaseExpression | None"]  # what a name holds in the current scope
QUERYSET_METHODS = {
    *LOOKUP_METHODS,
    *WRITE_METHODS,
    "all", "none", "first", "last", "count", "exists", "aggregate", "distinct", "only",
    "defer", "using", "iterator", "in_bulk", "latest", "earliest", "reverse", "extra",
    "raw", "select_for_update", "dates", "datetimes", "union", "intersection",
    "difference", "alias", "contains", "explain", "get_queryset", "model", "db",
    "complex_filter", "get_by_natural_key",
}  # fmt: skip
WRITE_VERBS = ("create", "update", "delete", "remove", "add", "set", "bulk", "mark", "save")
DETAIL_LIMIT = 160
RECURSION_LIMIT = 10_000


def dotted(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def literal(node: cst.BaseExpression | None) -> str | None:
    """The value of a plain or concatenated string literal (not f-strings), else None."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = literal(node.left), literal(node.right)
        return None if left is None or right is None else left + right
    return None


def strings_in(node: cst.CSTNode, named: Mapping[str, list[str]] | None = None) -> list[str]:
    """Every string literal inside a list/tuple/concatenation expression, in order.

    ``named`` holds the module's earlier string lists, so ``DJANGO_APPS + LOCAL_APPS`` reads.
    """
    found: list[str] = []
    value = literal(node) if isinstance(node, cst.BaseExpression) else None
    if value is not None:
        return [value]
    if isinstance(node, cst.Name) and named:
        return list(named.get(node.value, ()))
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        for element in node.elements:
            found.extend(strings_in(element.value, named))
    elif isinstance(node, cst.BinaryOperation):
        found.extend(strings_in(node.left, named))
        found.extend(strings_in(node.right, named))
    elif isinstance(node, cst.Call):
        for arg in node.args:
            found.extend(strings_in(arg.value, named))
    return found


def arg(call: cst.Call, position: int, keyword: str | None = None) -> cst.BaseExpression | None:
    """The argument at a position (among positional ones) or by keyword."""
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if keyword:
        for a in call.args:
            if a.keyword is not None and a.keyword.value == keyword:
                return a.value
    return positional[position].value if position < len(positional) else None


def sql_tables(sql: str) -> Iterator[str]:
    """The tables SQL text names after ``FROM``, ``JOIN``, ``INTO``, ``UPDATE``, ``TABLE``,
    ``USING`` (``DELETE``, ``MERGE``), ``TRUNCATE`` or ``COPY``, each once, lowercased and
    without schema or quotes: every table of a comma-separated FROM list and
    ``payments_payment`` for ``"public"."payments_payment"``, as the database would read it,
    comments (``/* ... */``, ``-- ...``) skipped and parentheses around a name too."""
    sql = SQL_COMMENT_RE.sub(" ", sql)
    seen = set()
    for keyword in TABLE_KEYWORD_RE.finditer(sql):
        position = keyword.end()
        while found := TABLE_REF_RE.match(sql, position):
            table = table_name(found.group("name"))
            if table not in seen:  # TRUNCATE TABLE t reads t twice; a self-join names it twice
                seen.add(table)
                yield table
            if not found.group("more"):
                break
            position = found.end()


def table_name(reference: str) -> str:
    """The table a possibly schema-qualified, quoted name refers to, lowercased."""
    return SQL_NAME_RE.findall(reference)[-1].strip('"`[]').lower()


def resolve_relative(module: str, is_package: bool, level: int, name: str) -> str:
    """The absolute module for ``from <dots><name> import ...`` inside ``module``."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


@dataclass
class _ClassBuilder:
    name: str
    bases: tuple[str, ...]
    meta: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    relations: list[Relation] = field(default_factory=list)
    has_fields: bool = False
    line: int = 0


class _Extractor(LineCounter):
    """A line-counting code generator that records facts as it meets the nodes."""

    def __init__(self, module_node: cst.Module, module: str, is_package: bool) -> None:
        super().__init__(module_node)
        self.module = module
        self.is_package = is_package
        self.scopes: list[tuple[cst.CSTNode, str, bool]] = []  # node, name, is_function
        self.pending: dict[int, tuple] = {}
        self.consumed: set[int] = set()
        self.aliases: dict[str, Ref] = {}
        self.scoped_aliases: dict[tuple[str, str], Ref] = {}  # (function scope, name) -> model
        self.scoped_strings: dict[tuple[str, str], str] = {}  # (scope, name) -> string, for SQL
        # (scope, name) -> a dict, list, tuple or set literal, for filter(**name), values(*name)
        self.scoped_literals: dict[tuple[str, str], cst.BaseExpression] = {}
        self.local_names: set[str] = set()
        self.star: list[str] = []
        self.imports: list[tuple[str, int, bool]] = []  # target, line, app-relative
        self.classes: list[_ClassBuilder] = []
        self.uses: list[tuple[UseKind, Ref, int, str, str]] = []  # kind, ref, line, scope, lookup
        # signal, sender, handler, whether the handler is qualified already, line
        self.receivers: list[tuple[str, Ref | None, str, bool, int]] = []
        self.tasks: list[tuple[str, str, int]] = []
        self.endpoints: list[tuple[str, str, int]] = []
        self.includes: list[tuple[str, Ref, int]] = []
        self.signals: list[tuple[str, int]] = []
        self.installed_apps: list[str] = []
        self.string_lists: dict[str, list[str]] = {}  # top-level NAME = ["a", "b"], for settings
        self.auth_user_model = ""
        self.unresolved: list[tuple[str, int]] = []
        self.handlers: dict[type[cst.CSTNode], Callable[[Any], None]] = {
            cst.Call: self._on_call_once,
            cst.ClassDef: self._on_class,
            cst.FunctionDef: self._on_function,
            cst.ImportFrom: self._on_import_from,
            cst.Import: self._on_import,
            cst.Assign: self._on_assign,
            cst.AugAssign: self._on_assign,
            cst.AnnAssign: self._on_assign,
        }

    # -- codegen hooks ---------------------------------------------------------------------
    def after_codegen(self, node: cst.CSTNode) -> None:
        if self.scopes and self.scopes[-1][0] is node:
            self.scopes.pop()

    def before_codegen(self, node: cst.CSTNode) -> None:
        # Called for each of the ~13 nodes per line: keep the common path to two lookups.
        if self.pending:
            waiting = self.pending.pop(id(node), None)
            if waiting is not None:
                self._on_pending(waiting)
        handler = self.handlers.get(type(node))
        if handler is not None:
            handler(node)

    def _on_call_once(self, node: cst.Call) -> None:
        if id(node) in self.consumed:
            return
        if not node.lpar:
            self._on_call(node)
            return
        # Generation is at the opening parenthesis (`rows = (`); the call starts on the line
        # after the newlines inside the parentheses, and its evidence should point there.
        opened = self.line
        self.line += sum(EMPTY_MODULE.code_for_node(p).count("\n") for p in node.lpar)
        self._on_call(node)
        self.line = opened

    # -- scopes ----------------------------------------------------------------------------
    @property
    def scope(self) -> str:
        return ".".join(name for _, name, _ in self.scopes)

    def _in_function(self) -> bool:
        return any(is_function for _, _, is_function in self.scopes)

    def _on_function(self, node: cst.FunctionDef) -> None:
        if not self.scopes:
            self.local_names.add(node.name.value)
        self.scopes.append((node, node.name.value, True))
        for decorator in node.decorators:
            target = decorator.decorator
            func = target.func if isinstance(target, cst.Call) else target
            name = dotted(func) or ""
            if name.split(".")[-1] in ("task", "shared_task", "periodic_task"):
                task_name = ""
                if isinstance(target, cst.Call):
                    task_name = literal(arg(target, 99, "name")) or ""
                self.pending[id(node.name)] = ("task", self.scope, task_name)

    def _on_class(self, node: cst.ClassDef) -> None:
        if self._in_function():
            self.scopes.append((node, node.name.value, False))
            return
        if not self.scopes:
            self.local_names.add(node.name.value)
        bases = tuple(name for b in node.bases if (name := dotted(b.value)))
        builder = _ClassBuilder(
            name=".".join([self.scope, node.name.value]).lstrip("."), bases=bases
        )
        self.classes.append(builder)
        self.pending[id(node.name)] = ("class", builder)
        self.scopes.append((node, node.name.value, False))
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        for statement in body:
            if isinstance(statement, cst.ClassDef) and statement.name.value == "Meta":
                self._read_meta(builder, statement)
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    self._read_class_attr(builder, small)
            elif isinstance(statement, cst.FunctionDef) and statement.name.value in SETTINGS_NAMES:
                self._read_settings_method(statement)

    def _read_settings_method(self, method: cst.FunctionDef) -> None:
        """``def INSTALLED_APPS(self): return [...]`` on a class-based settings class, or
        ``apps = [...]; apps += [...]; return apps`` (a list the method builds first)."""
        body = method.body.body if isinstance(method.body, cst.IndentedBlock) else ()
        named = dict(self.string_lists)
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.Return) and small.value is not None:
                        self.installed_apps.extend(strings_in(small.value, named))
                    elif isinstance(small, cst.Assign) and isinstance(
                        small.targets[0].target, cst.Name
                    ):
                        named[small.targets[0].target.value] = strings_in(small.value, named)
                    elif isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
                        name = small.target.value
                        named[name] = named.get(name, []) + strings_in(small.value, named)

    def _read_meta(self, builder: _ClassBuilder, meta: cst.ClassDef) -> None:
        body = meta.body.body if isinstance(meta.body, cst.IndentedBlock) else ()
        for statement in body:
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if isinstance(small, cst.Assign) and isinstance(small.targets[0].target, cst.Name):
                    key = small.targets[0].target.value
                    value = small.value
                    text = literal(value)
                    if text is None and isinstance(value, cst.Name):
                        text = value.value
                    if key in ("app_label", "db_table", "abstract", "proxy", "managed") and text:
                        builder.meta[key] = text

    def _read_class_attr(self, builder: _ClassBuilder, small: cst.BaseSmallStatement) -> None:
        if isinstance(small, cst.Assign) and isinstance(small.targets[0].target, cst.Name):
            name, value = small.targets[0].target.value, small.value
        elif (
            isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value
        ):
            name, value = small.target.value, small.value
        else:
            return
        text = literal(value)
        if text is not None and name in ("name", "label", "verbose_name"):
            builder.attrs[name] = text
        if name == "INSTALLED_APPS":  # class-based settings (django-configurations)
            self.installed_apps.extend(strings_in(value, self.string_lists))
        if not isinstance(value, cst.Call):
            return
        func = dotted(value.func) or ""
        # Django model fields, not form, serializer or tastypie fields of the same name; the
        # qualified name tells the field's class when it is imported under another name.
        field_class = self.qualify(func)
        qualified = field_class.value
        last = qualified.split(".")[-1]
        home = func.startswith("models.") or qualified.startswith(MODEL_FIELD_HOMES)
        relation = last in RELATION_KINDS and (
            home or func == last or qualified.startswith(RELATION_HOMES)
        )
        if relation or (last.endswith("Field") and home):
            builder.has_fields = True
        # A class of the project's own may build on a relation field: the project stage tells.
        maybe = not relation and not home and field_class.kind == "name"
        if relation or (maybe and arg(value, 0, "to") is not None):
            target = arg(value, 0, "to")
            ref = Ref("generic") if last == "GenericForeignKey" else self._model_ref(target)
            related = (
                literal(arg(value, 99, "related_query_name"))
                or literal(arg(value, 99, "related_name"))
                or ""
            )
            through = arg(value, 99, "through")
            self.pending[id(value)] = (
                "relation",
                builder,
                name,
                RELATION_KINDS[last] if relation else "",
                ref,
                related,
                None if through is None else self._model_ref(through),
                "" if relation else qualified,
            )
            if relation:
                self.consumed.add(id(value))

    def _on_pending(self, waiting: tuple) -> None:
        what = waiting[0]
        if what == "class":
            waiting[1].line = self.line
        elif what == "relation":
            _, builder, name, kind, ref, related, through, field_class = waiting
            builder.relations.append(
                Relation(name, kind, ref, self.line, "", related, through, field_class)
            )
        elif what == "task":
            self.tasks.append((waiting[1], waiting[2], self.line))

    # -- imports and assignments -----------------------------------------------------------
    def _on_import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name) or ""
            if alias.asname and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = Ref("name", name)
            else:
                head = name.split(".")[0]
                self.aliases.setdefault(head, Ref("name", head))
            self.imports.append((name, self.line, False))

    def _on_import_from(self, node: cst.ImportFrom) -> None:
        base = dotted(node.module) if node.module else ""
        level = len(node.relative)
        if level:
            base = resolve_relative(self.module, self.is_package, level, base or "")
        if not base:
            return
        if isinstance(node.names, cst.ImportStar):
            self.star.append(base)
            self.imports.append((base, self.line, False))
            return
        for alias in node.names:
            name = dotted(alias.name) or ""
            bound = name
            if alias.asname and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            self.aliases[bound] = Ref("name", f"{base}.{name}")
            self.imports.append((f"{base}.{name}", self.line, False))

    def _on_assign(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Assign) and isinstance(node.targets[0].target, cst.Name):
            # SQL = "SELECT ... FROM t" (module, class or function), later cursor.execute(SQL)
            text = self._sql_text(node.value)
            if text is not None:
                self.scoped_strings[(self.scope, node.targets[0].target.value)] = text
            if isinstance(node.value, UNPACKABLE):
                self.scoped_literals[(self.scope, node.targets[0].target.value)] = node.value
        if (
            isinstance(node, cst.Assign)
            and isinstance(node.targets[0].target, cst.Name)
            and self._model_ref(node.value) == AUTH_USER
        ):
            # User = get_user_model(), anywhere in the file
            self.aliases[node.targets[0].target.value] = AUTH_USER
        if self.scopes:
            if self._in_function():
                self._on_local_assign(node)
            elif isinstance(node, cst.Assign):
                target = node.targets[0].target
                if isinstance(target, cst.Name) and target.value == "model":
                    ref = self._model_ref(node.value)
                    if ref.kind != "model":
                        self._use("read", ref)
            return
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            targets = [node.target]
        else:
            return
        value = node.value
        for target in targets:
            if not isinstance(target, cst.Name):
                continue
            self.local_names.add(target.value)
            if isinstance(value, (cst.List, cst.Tuple, cst.BinaryOperation, cst.Name)):
                listed = strings_in(value, self.string_lists)
                if isinstance(node, cst.AugAssign):
                    listed = self.string_lists.get(target.value, []) + listed
                self.string_lists[target.value] = listed
            if target.value == "INSTALLED_APPS" and value is not None:
                self.installed_apps.extend(strings_in(value, self.string_lists))
            elif target.value == "AUTH_USER_MODEL":
                self.auth_user_model = literal(value) or self.auth_user_model
            elif isinstance(value, cst.Call):
                callee = dotted(value.func) or ""
                if callee.endswith("Signal"):
                    self.signals.append((target.value, self.line))
                elif bound := _get_model_ref(value):  # oscar: Order = get_model("order", "Order")
                    self.aliases[target.value] = bound

    def _on_local_assign(self, node: cst.CSTNode) -> None:
        """``Membership = apps.get_model("projects", "Membership")`` inside a function."""
        if isinstance(node, cst.Assign) and isinstance(node.targets[0].target, cst.Name):
            ref = _get_model_ref(node.value)
            if ref:
                self.scoped_aliases[(self.scope, node.targets[0].target.value)] = ref

    # -- calls -----------------------------------------------------------------------------
    def _model_ref(self, node: cst.BaseExpression | None) -> Ref:
        """A model reference as written (a name is qualified later, once imports are known)."""
        if node is None:
            return UNKNOWN
        text = literal(node)
        if text is not None:
            return Ref("model", text)
        name = dotted(node)
        if name is not None:
            if name.endswith("AUTH_USER_MODEL"):
                return AUTH_USER
            return self._scoped_alias(name) or Ref("name", name)
        if isinstance(node, cst.Call) and (dotted(node.func) or "").endswith("get_user_model"):
            return AUTH_USER
        return _get_model_ref(node) or UNKNOWN

    def _bound_literal(self, name: str) -> cst.BaseExpression | None:
        """The literal a name was bound to in this scope or one enclosing it."""
        return _innermost(self.scoped_literals, self.scope, name)

    def _scoped_alias(self, name: str) -> Ref | None:
        """The model a name was bound to by get_model() in this function or one enclosing it."""
        return _innermost(self.scoped_aliases, self.scope, name)

    def _sql_text(self, node: cst.BaseExpression) -> str | None:
        """The SQL a raw-SQL argument holds: a literal, the literal parts of an f-string or of
        ``"..." % args`` / ``"...".format()``, or a string bound to a name in scope; added
        with ``+``, an operand none of those is stands as ``COMPUTED``."""
        if isinstance(node, cst.Name):
            return _innermost(self.scoped_strings, self.scope, node.value)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            left, right = self._sql_text(node.left), self._sql_text(node.right)
            if left is None and right is None:
                return None
            return (COMPUTED if left is None else left) + (COMPUTED if right is None else right)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
            return self._sql_text(node.left)
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            return self._sql_text(node.func.value) if node.func.attr.value == "format" else None
        return _string_text(node)

    def _use(self, kind: UseKind, target: Ref, lookup: str = "") -> None:
        self.uses.append((kind, target, self.line, self.scope, lookup))

    def _note(self, message: str) -> None:
        self.unresolved.append((message, self.line))

    def _on_call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if self._on_manager_chain(node):
                return
            owner = dotted(func.value)
            if owner == "INSTALLED_APPS" and method in ("append", "extend", "insert"):
                values = node.args[1:] if method == "insert" else node.args
                self.installed_apps.extend(
                    s for a in values for s in strings_in(a.value, self.string_lists)
                )
            elif method in TASK_BY_NAME and self._on_task_by_name(node):
                pass
            elif method in TASK_CALLS and owner:
                self._use("task_call", Ref("name", owner))
            elif method in ("send", "send_robust") and owner:
                self._use("signal_send", Ref("name", owner))
            elif method == "connect" and owner:
                self._on_connect(node, owner)
            elif method == "register" and owner:
                self._on_register(node, owner)
            elif method in RAW_SQL_CALLS:
                self._on_raw_sql(node, method)
            elif method in ("get_model",):
                self._on_get_model(node)
            elif method in DYNAMIC_IMPORTS or method in CLASS_LOADERS:
                self._on_dynamic_import(node, method)
            elif method == "call_command":
                self._on_call_command(node)
            return
        name = dotted(func)
        if name is None:
            return
        if name in URL_FUNCS:
            self._on_url(node)
        elif name.split(".")[-1] in TASK_BY_NAME:
            self._on_task_by_name(node)
        elif name == "call_command":
            self._on_call_command(node)
        elif name in ("get_model",):
            self._on_get_model(node)
        elif name in ("get_object_or_404", "get_list_or_404"):
            self._use("read", self._model_ref(arg(node, 0)))
        elif name == "receiver":
            self._on_receiver(node)
        elif name in RAW_SQL_CALLS:
            self._on_raw_sql(node, name)
        elif name in DYNAMIC_IMPORTS or name in CLASS_LOADERS:
            self._on_dynamic_import(node, name)
        elif (
            name == "getattr"
            and self._is_module_alias(arg(node, 0))
            and literal(arg(node, 1)) is None
        ):
            self._note("getattr() on a module with a computed name")

    def _on_task_by_name(self, node: cst.Call) -> bool:
        """``app.send_task("name")``, ``signature("name")``: a Celery task called by its name
        (``my_task.signature(args)`` names none)."""
        name = literal(arg(node, 0, "name"))
        if name:
            self._use("send_task", Ref("text", name))
        return bool(name)

    def _on_call_command(self, node: cst.Call) -> None:
        """``call_command("name")``: the management command of that name, in whichever app."""
        name = literal(arg(node, 0))
        if name:
            self._use("command", Ref("text", name))

    def _is_module_alias(self, node: cst.BaseExpression | None) -> bool:
        name = dotted(node) if node is not None else None
        if not name:
            return False
        target = self.aliases.get(name.split(".")[0], UNKNOWN).value
        return target.endswith(("models", "views", "tasks"))

    def _on_manager_chain(self, node: cst.Call) -> bool:
        """``Model.objects.filter(...).update(...)``: one read or write use per chain."""
        methods: list[tuple[str, cst.Call | None]] = []
        current: cst.BaseExpression = node
        base = None
        while True:
            if isinstance(current, cst.Call):
                func = current.func
                if isinstance(func, cst.Attribute):
                    if func.attr.value in MANAGERS:
                        base = func.value
                        break
                    methods.append((func.attr.value, current))
                    current = func.value
                    continue
                return False
            if isinstance(current, cst.Attribute):
                if current.attr.value in MANAGERS:
                    base = current.value
                    break
                methods.append((current.attr.value, None))
                current = current.value
                continue
            if isinstance(current, cst.Subscript):
                current = current.value
                continue
            return False
        ref = self._model_ref(base)
        if ref == UNKNOWN:
            self._note("ORM call on a model that is not a plain name")
            if methods and methods[0][0] in RAW_SQL_CALLS:  # the calls inside are met later
                self._on_raw_sql(node, methods[0][0])
            return True
        names = {name for name, _ in methods}
        custom = sorted(n for n in names if not _queryset_method(n))
        write = bool(names & WRITE_METHODS) or any(c.startswith(WRITE_VERBS) for c in custom)
        self._use("write" if write else "read", ref)
        for name in custom:
            kind = "write" if name.startswith(WRITE_VERBS) else "read"
            self._note(f"custom manager method {name}() counted as a {kind}: a guess from its name")
        lookups: list[str] = []
        for name, call in methods:
            if call is None:
                continue
            self.consumed.add(id(call))
            if name in LOOKUP_METHODS:
                lookups.extend(_lookups(call, self._bound_literal, name in JOINING_CALLS))
            elif name in RAW_SQL_CALLS:  # Model.objects.raw("..."), .filter().extra(...)
                self._on_raw_sql(call, name)
        for lookup in sorted(set(lookups)):
            self._use("lookup", ref, lookup)
        return True

    def _on_connect(self, node: cst.Call, signal: str) -> None:
        handler = dotted(arg(node, 0, "receiver")) if arg(node, 0, "receiver") else None
        sender = self._model_ref(arg(node, 1, "sender")) if arg(node, 1, "sender") else None
        if handler:
            self.receivers.append((signal, sender, handler, False, self.line))

    def _on_receiver(self, node: cst.Call) -> None:
        first = arg(node, 0, "signal")
        signals = [first] if first is not None else []
        if isinstance(first, (cst.List, cst.Tuple)):
            signals = [e.value for e in first.elements]
        sender_node = arg(node, 99, "sender")
        sender = self._model_ref(sender_node) if sender_node is not None else None
        handler = f"{self.module}.{self.scope}"  # the decorated function
        for signal in signals:
            name = dotted(signal)
            if name:
                self.receivers.append((name, sender, handler, True, self.line))

    def _on_register(self, node: cst.Call, owner: str) -> None:
        first = arg(node, 0)
        prefix = literal(first)
        if prefix is not None:
            view = dotted(arg(node, 1, "viewset")) if arg(node, 1, "viewset") else None
            if view:
                self.endpoints.append((prefix, view, self.line))
            return
        if owner.split(".")[-1] in ("site", "admin") or owner.endswith("admin_site"):
            targets = first.elements if isinstance(first, (cst.List, cst.Tuple)) else []
            nodes = [e.value for e in targets] or ([first] if first is not None else [])
            for target in nodes:
                self._use("admin", self._model_ref(target))

    def _on_url(self, node: cst.Call) -> None:
        route = literal(arg(node, 0, "route"))
        view = arg(node, 1, "view")
        if route is None or view is None:
            return
        if isinstance(view, cst.Call):
            callee = view.func
            if isinstance(callee, cst.Attribute) and callee.attr.value == "as_view":
                target = dotted(callee.value)
            elif (dotted(callee) or "").split(".")[-1] == "include":
                self._on_include(route, arg(view, 0))
                return
            else:
                return  # other computed views
        else:
            target = dotted(view)
        if target:
            self.endpoints.append((route, target, self.line))

    def _on_include(self, route: str, urls: cst.BaseExpression | None) -> None:
        """``include("app.urls")``, ``include(app.urls)`` or ``include(("app.urls", "app"))``:
        that URLconf's routes get ``route``."""
        if isinstance(urls, cst.Tuple) and urls.elements:
            urls = urls.elements[0].value  # (URLconf, app_name), as Django's include() takes
        text = literal(urls)
        if text is not None:
            self.includes.append((route, Ref("text", text), self.line))
        elif (name := dotted(urls)) is not None:
            self.includes.append((route, Ref("name", name), self.line))

    def _on_get_model(self, node: cst.Call) -> None:
        named = _named_model(node)
        if named is not None:
            self._use("read", named)
        elif node.args:
            self._note("get_model() with a computed app or model name")

    def _on_dynamic_import(self, node: cst.Call, name: str) -> None:
        target = literal(arg(node, 0))
        if target is None:
            self._note(f"{name.split('.')[-1]}() with a computed module name")
        else:
            self.imports.append((target, self.line, name.split(".")[-1] in CLASS_LOADERS))

    def _on_raw_sql(self, node: cst.Call, method: str) -> None:
        """The tables named by the SQL handed to ``execute``, ``raw`` or ``RawSQL``, or to
        ``extra()``: the SQL of its ``select`` values and ``where`` items, and the tables
        its ``tables`` list names."""
        if method == "extra":
            sql = [
                *self._sql_items(arg(node, 0, "select")),
                *self._sql_items(arg(node, 1, "where")),
            ]
            listed = self._sql_items(arg(node, 3, "tables"))
            tables = [table_name(text) for text in listed if text and SQL_NAME_RE.search(text)]
        else:
            sql, tables = [self._sql_text(a.value) for a in node.args], []
        for text in sql:
            tables.extend(sql_tables(text) if text else ())
            if text and COMPUTED_TABLE_RE.search(SQL_COMMENT_RE.sub(" ", text)):
                self._note("raw SQL with a computed table name")
        for table in dict.fromkeys(tables):
            self._use("raw_sql", Ref("table", table))

    def _sql_items(self, node: cst.BaseExpression | None) -> list[str | None]:
        """The SQL of each item of a list, tuple or dict (its values) literal, or of one a
        name in scope is bound to."""
        if isinstance(node, cst.Name):
            node = self._bound_literal(node.value)
        if isinstance(node, cst.Dict):
            return [
                self._sql_text(e.value) for e in node.elements if isinstance(e, cst.DictElement)
            ]
        if isinstance(node, (cst.List, cst.Tuple)):
            return [self._sql_text(e.value) for e in node.elements]
        return []

    # -- results ---------------------------------------------------------------------------
    def qualify(self, name: str) -> Ref:
        """Qualify a dotted name with this file's imports and top-level definitions."""
        head, _, rest = name.partition(".")
        if head in self.aliases:
            base = self.aliases[head]
            if base.kind != "name":  # Order = get_model(...), User = get_user_model()
                return base if not rest else Ref("unknown", name)
            return Ref("name", f"{base.value}.{rest}" if rest else base.value)
        if head in self.local_names or (self.star and head not in ("self", "cls")):
            # A star import may define it: the project stage follows this module's stars.
            return Ref("name", f"{self.module}.{name}")
        return Ref("unknown", name)

    def qualify_ref(self, ref: Ref) -> Ref:
        return self.qualify(ref.value) if ref.kind == "name" else ref


def _name(ref: Ref) -> str:
    return ref.value if ref.kind == "name" else ""


def _lookups(call: cst.Call, bound: Bound, joins: bool = False) -> Iterator[str]:
    """The lookups across relations a QuerySet method's arguments name: ``customer__user=x``,
    ``"-customer__name"``, also inside expressions (``Q(...)`` combined with ``|``, ``&``,
    ``~``, ``Prefetch(...)``, ``annotate(paid=Sum("order__payment__amount"))``,
    ``filter(price=F("line__price"))``, ``order_by(F("line__price").desc())``): each joins
    the tables it names as a filter does. Literals unpacked into the call count as written
    out: ``filter(**{"order__payment__amount__gt": 0})``, ``values(*["order__status"])``,
    also when bound to a name first (``kw = {...}``, then ``filter(**kw)``): `bound` says what
    a name holds. When the call `joins` (``select_related("a")``, ``prefetch_related("a")``,
    ``Prefetch("a")``), one name without ``__`` is a relation whose table is read as well."""
    for keyword, value in _arguments(call, bound):
        if keyword and "__" in keyword:
            yield keyword
        text = literal(value)
        if text is None:
            yield from _nested_lookups(value, bound)
        elif keyword is None and ("__" in text or joins):
            yield text.lstrip("-")


def _arguments(call: cst.Call, bound: Bound) -> Iterator[tuple[str | None, cst.BaseExpression]]:
    """A call's arguments as (keyword, value) the way Python passes them: a literal dict
    after ``**`` gives one keyword argument per key ("" when the key is computed), a literal
    list, tuple or set after ``*`` one positional argument (keyword None) per element; a
    name after either is read as the literal `bound` says it holds."""
    for a in call.args:
        value = a.value
        if a.star and isinstance(value, cst.Name):
            value = bound(value.value) or value
        if a.star == "**" and isinstance(value, cst.Dict):
            for item in value.elements:
                if isinstance(item, cst.DictElement):
                    yield literal(item.key) or "", item.value
        elif a.star == "*" and isinstance(value, (cst.List, cst.Tuple, cst.Set)):
            for element in value.elements:
                yield None, element.value
        else:
            yield (None if a.keyword is None else a.keyword.value), a.value


def _nested_lookups(node: cst.BaseExpression, bound: Bound) -> Iterator[str]:
    if isinstance(node, cst.BinaryOperation):
        yield from _nested_lookups(node.left, bound)
        yield from _nested_lookups(node.right, bound)
    elif isinstance(node, cst.UnaryOperation):
        yield from _nested_lookups(node.expression, bound)
    elif isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            yield from _nested_lookups(func.value, bound)  # F("a__b").desc()
        elif (name := (dotted(func) or "").rpartition(".")[2]) in LOOKUP_EXPRESSIONS:
            yield from _lookups(node, bound, name in JOINING_CALLS)


def _innermost(bindings: Mapping[tuple[str, str], Any], scope: str, name: str) -> Any:
    """What ``name`` is bound to in ``scope`` or the nearest scope enclosing it, else None."""
    while True:
        found = bindings.get((scope, name))
        if found is not None or not scope:
            return found
        scope = scope.rpartition(".")[0]


def _string_text(node: cst.BaseExpression | None) -> str | None:
    """A string literal's text; an f-string's literal parts with each ``{...}`` as ``?``."""
    if isinstance(node, cst.FormattedString):
        parts = node.parts
        texts = (p.value if isinstance(p, cst.FormattedStringText) else COMPUTED for p in parts)
        return "".join(texts)
    if isinstance(node, cst.ConcatenatedString):
        left, right = _string_text(node.left), _string_text(node.right)
        return None if left is None or right is None else left + right
    return literal(node)


def _queryset_method(name: str) -> bool:
    """A QuerySet/Manager method of Django's, or its async twin (``acount``, ``aget``)."""
    return name in QUERYSET_METHODS or (name[:1] == "a" and name[1:] in QUERYSET_METHODS)


def _get_model_ref(value: cst.BaseExpression | None) -> Ref | None:
    """The model of a ``get_model(...)`` call that names it (see ``_named_model``), else None."""
    if not isinstance(value, cst.Call) or not (dotted(value.func) or "").endswith("get_model"):
        return None
    return _named_model(value)


def _named_model(call: cst.Call) -> Ref | None:
    """The model ``get_model("app", "Model")`` (or ``app_label=``, ``model_name=``),
    ``get_model("app.Model")``, ``get_model(settings.AUTH_USER_MODEL)`` or
    ``apps.get_app_config("app").get_model("Model")`` names, else None (a computed name)."""
    label = _app_config_label(call.func)
    if label is not None:
        model = literal(arg(call, 0, "model_name"))
        return None if model is None else Ref("model", f"{label}.{model}")
    first, second = arg(call, 0, "app_label"), arg(call, 1, "model_name")
    app, model = literal(first), literal(second)
    if app is not None and model is not None:
        return Ref("model", f"{app}.{model}")
    if second is None and app is not None and "." in app:
        return Ref("model", app)
    if second is None and (dotted(first) or "").endswith("AUTH_USER_MODEL"):
        return AUTH_USER
    return None


def _app_config_label(func: cst.BaseExpression) -> str | None:
    """The label of the app config a method is called on, ``apps.get_app_config("app")``."""
    if not isinstance(func, cst.Attribute) or not isinstance(func.value, cst.Call):
        return None
    config = func.value
    if not (dotted(config.func) or "").endswith("get_app_config"):
        return None
    return literal(arg(config, 0, "app_label"))


def _detail(lines: list[str], line: int) -> str:
    if 0 < line <= len(lines):
        return lines[line - 1].strip()[:DETAIL_LIMIT]
    return ""


CODING_RE = re.compile(rb"[ \t\f]*#.*?coding[:=]")  # PEP 263, on line 1 or 2
PARSER_AT = re.compile(r"error at (\d+):\d+: ?(.*)")


def _syntax_error(error: Exception, data: bytes) -> tuple[int, str]:
    """Line and message of a parse failure.

    libcst's native parser can name a later line (``class A(B:`` is reported at the next
    token), so when the running Python rejects the file too, its line and message are used.
    """
    try:
        compile(data, "<analyzed>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as python:
        if python.lineno:
            return python.lineno, f"syntax error: {python.msg}"
    except (ValueError, RecursionError, MemoryError):
        pass
    text = getattr(error, "message", "") or str(error)
    found = PARSER_AT.search(text)
    if found:
        return int(found.group(1)), f"syntax error: {found.group(2).strip()}"
    line = getattr(error, "raw_line", 0) or getattr(error, "lineno", 0) or 0
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return int(line), first


def source_text(data: bytes) -> tuple[str, Located | None]:
    """A file's text as Python compiles it, and None; or, when it does not decode, its text
    with bad bytes replaced (for line counts and evidence) and the problem at its line.

    Python decodes source as its BOM or PEP 263 declaration says (``# -*- coding: latin-1
    -*-``), UTF-8 otherwise, and ends lines at ``\\r\\n`` and a lone ``\\r`` as at ``\\n``
    (universal newlines), so the text handed on has ``\\n`` line ends only.
    Bytes that do not decode inside comments only are no problem: Python never decodes a
    comment and imports such a file (a latin-1 ``# café`` in a UTF-8 project runs).
    """
    encoding = "utf-8-sig"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return _universal_newlines(data.decode(encoding)), None
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        if not isinstance(error, LookupError) and _compiles(data):
            # The bytes replaced are in comments: nothing the analyzer reads changes.
            return _universal_newlines(data.decode(encoding, errors="replace")), None
        text = _universal_newlines(data.decode("utf-8-sig", errors="replace"))
        line, message = _undecodable(error, data)
        hint = "; declare the file's encoding (PEP 263) or save it as UTF-8"
        return text, Located(message + hint, line, _detail(source_lines(text), line))


def _compiles(data: bytes) -> bool:
    """Whether the running Python compiles these bytes (decoding them as it does)."""
    try:
        compile(data, "<analyzed>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _undecodable(error: Exception, data: bytes) -> tuple[int, str]:
    """Line and message for bytes that do not decode, or for an encoding declaration that
    Python rejects (unknown, not a text encoding, contradicting the BOM)."""
    if isinstance(error, UnicodeDecodeError):
        line = _universal_newlines(data[: error.start].decode("latin-1")).count("\n") + 1
        byte = data[error.start : error.start + 1]
        return line, f"cannot decode as {error.encoding} ({error.reason}: {byte!r})"
    declared = [n for n, raw in enumerate(data.splitlines()[:2], 1) if CODING_RE.match(raw)]
    return (declared[0] if declared else 1), f"cannot decode: {error}"


def _universal_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def source_lines(text: str) -> list[str]:
    """``text``'s lines as Python's tokenizer numbers them: ended by ``\\n`` only, never by
    the form feeds, U+2028, U+0085... at which ``str.splitlines`` also breaks."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line starts none
    return lines


def extract_source(path: str, module: str, is_package: bool, data: bytes) -> FileFacts:
    """Parse one file and return its facts; a syntax error or undecodable text becomes
    ``parse_error``."""
    text, undecodable = source_text(data)
    lines = source_lines(text)
    if undecodable is not None:
        return FileFacts(path, module, is_package, len(lines), parse_error=undecodable)
    try:
        tree = cst.parse_module(text)
    except (
        cst.ParserSyntaxError,
        SyntaxError,
        ValueError,
        RecursionError,
    ) as error:
        return _unparsed(path, module, is_package, lines, *_syntax_error(error, data))
    x = _Extractor(tree, module, is_package)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))  # long generated a+b+c+... chains
    try:
        walk(tree, x)
    except RecursionError:
        message = "nested too deeply to analyze (Python's recursion limit)"
        return _unparsed(path, module, is_package, lines, x.line, message)
    except (SyntaxError, ValueError) as error:
        # A string literal libcst parses and Python rejects ("\x4", b"café"), met evaluating it
        return _unparsed(path, module, is_package, lines, *_syntax_error(error, data))
    finally:
        sys.setrecursionlimit(limit)
    q = x.qualify_ref
    mod = module
    classes = tuple(
        ClassFact(
            name=c.name,
            line=c.line,
            bases=tuple(x.qualify(b) for b in c.bases),
            meta=tuple(sorted(c.meta.items())),
            attrs=tuple(sorted(c.attrs.items())),
            relations=tuple(
                Relation(
                    r.field,
                    r.kind,
                    q(r.target),
                    r.line,
                    _detail(lines, r.line),
                    r.related_name,
                    None if r.through is None else q(r.through),
                    r.field_class,
                )
                for r in c.relations
            ),
            has_fields=c.has_fields,
        )
        for c in x.classes
    )
    return FileFacts(
        path=path,
        module=module,
        is_package=is_package,
        lines=len(lines),
        imports=tuple(
            Import(target, line, _detail(lines, line), relative)
            for target, line, relative in x.imports
        ),
        aliases=tuple(sorted(x.aliases.items())),
        star_imports=tuple(x.star),
        classes=classes,
        uses=tuple(
            Use(kind, q(target), line, scope, _detail(lines, line), lookup)
            for kind, target, line, scope, lookup in x.uses
        ),
        receivers=tuple(
            Receiver(
                x.qualify(signal),
                None if sender is None else q(sender),
                handler if done else _name(x.qualify(handler)),
                line,
                _detail(lines, line),
            )
            for signal, sender, handler, done, line in x.receivers
        ),
        tasks=tuple(Task(f"{mod}.{name}", task_name, line) for name, task_name, line in x.tasks),
        endpoints=tuple(
            Endpoint(route, x.qualify(view), line, _detail(lines, line))
            for route, view, line in x.endpoints
        ),
        signals=tuple(
            Located(f"{mod}.{name}", line, _detail(lines, line)) for name, line in x.signals
        ),
        includes=tuple(
            Endpoint(route, q(urls), line, _detail(lines, line)) for route, urls, line in x.includes
        ),
        installed_apps=tuple(x.installed_apps),
        auth_user_model=x.auth_user_model,
        unresolved=tuple(
            Located(message, line, _detail(lines, line)) for message, line in x.unresolved
        ),
    )


def _unparsed(
    path: str, module: str, is_package: bool, lines: list[str], line: int, message: str
) -> FileFacts:
    """The facts of a file that could not be read: its parse error at ``line``, only."""
    error = Located(message, int(line), _detail(lines, int(line)))
    return FileFacts(path, module, is_package, len(lines), parse_error=error)


MIGRATION_DEP_RE = re.compile(r"\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*,\s*['\"]")
MIGRATION_BLOCK_RE = re.compile(r"dependencies\s*=\s*[\[(]", re.MULTILINE)


def extract_migration(path: str, module: str, data: bytes) -> FileFacts:
    """Read a migration's ``dependencies`` with a pattern; migrations are generated code.

    Why not parse: migrations are a third or more of a project's files and only this one
    list matters to the analysis; reading it textually keeps cold runs close to parse cost.
    """
    text, undecodable = source_text(data)
    lines = source_lines(text)
    if undecodable is not None:
        return FileFacts(
            path, module, False, len(lines), is_migration=True, parse_error=undecodable
        )
    deps: list[MigrationDep] = []
    block = MIGRATION_BLOCK_RE.search(text)
    if block:
        end = text.find("]", block.end())
        segment_end = end if end != -1 else len(text)
        for match in MIGRATION_DEP_RE.finditer(text, block.end(), segment_end):
            line = text.count("\n", 0, match.start()) + 1
            deps.append(MigrationDep(match.group(1), line, _detail(lines, line)))
        if "swappable_dependency" in text[block.end() : segment_end]:
            line = text.count("\n", 0, text.find("swappable_dependency", block.end())) + 1
            deps.append(MigrationDep("", line, _detail(lines, line)))  # the user model's app
    return FileFacts(path, module, False, len(lines), migration_deps=tuple(deps), is_migration=True)
