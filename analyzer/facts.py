"""Facts extracted from one source file: plain frozen data, picklable for the cache.

Names in facts are already qualified with the file's own imports (``pkg.models.Order``);
string model references keep a ``str:`` prefix (``str:orders.Order``), settings references a
``setting:`` prefix, and names the file could not qualify a ``?`` prefix. The project stage
resolves them against every file's facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UseKind = Literal[
    "read",
    "write",
    "raw_sql",
    "task_call",
    "send_task",
    "signal_send",
    "admin",
    "lookup",
    "command",  # call_command("name"): a management command run by its name
]

# Relation field classes (Django's and popular packages') -> the relation each makes, and the
# modules model fields and relation fields come from.
RELATION_KINDS = {
    "ForeignKey": "ForeignKey",
    "OneToOneField": "OneToOneField",
    "ManyToManyField": "ManyToManyField",
    "ParentalKey": "ForeignKey",
    "ParentalManyToManyField": "ManyToManyField",
    "TreeForeignKey": "ForeignKey",
    "GenericForeignKey": "GenericForeignKey",
    "GenericRelation": "GenericRelation",
}
MODEL_FIELD_HOMES = (
    "django.db.models",
    "django.contrib.postgres.fields",
    "django.contrib.gis.db.models",
    "django.contrib.contenttypes.fields",
)
RELATION_HOMES = (*MODEL_FIELD_HOMES, "modelcluster.", "mptt.", "treebeard.")

FACTS_VERSION = 19  # bump when extraction changes, so cached facts are recomputed


RefKind = Literal["name", "unknown", "model", "setting", "table", "text", "generic"]


@dataclass(frozen=True)
class Ref:
    """A reference as written, qualified where it is a name.

    name: a dotted name qualified with the file's imports; unknown: a name the file could not
    qualify (a variable, a parameter), "" for an expression; model: an ``"app.Model"``,
    ``"Model"`` or ``"self"`` string; setting: a setting's name (``AUTH_USER_MODEL``); table: a
    table in raw SQL; text: another literal (a Celery task name, a URLconf module); generic: a
    GenericForeignKey, which names no model.
    """

    kind: RefKind
    value: str = ""


UNKNOWN = Ref("unknown")
AUTH_USER = Ref("setting", "AUTH_USER_MODEL")


@dataclass(frozen=True)
class Relation:
    """A relation field on a model class (ForeignKey, OneToOneField, ManyToManyField, ...)."""

    field: str
    kind: str
    target: Ref
    line: int
    detail: str
    related_name: str = ""
    through: Ref | None = None  # a ManyToManyField's through= model
    field_class: str = ""  # a project class that may build on a relation field ("": known)


@dataclass(frozen=True)
class ClassFact:
    """A class defined outside any function: a model, an AppConfig, a view, anything."""

    name: str
    line: int
    bases: tuple[Ref, ...]
    meta: tuple[tuple[str, str], ...]
    attrs: tuple[tuple[str, str], ...]
    relations: tuple[Relation, ...]
    has_fields: bool


@dataclass(frozen=True)
class Use:
    """One place where code touches something: a model, a task, a signal, a table."""

    kind: UseKind
    target: Ref
    line: int
    scope: str
    detail: str
    lookup: str = ""  # for kind lookup: the lookup across relations, ``customer__user``


@dataclass(frozen=True)
class Receiver:
    """A signal receiver: ``@receiver(signal, sender=X)`` or ``signal.connect(handler, ...)``."""

    signal: Ref
    sender: Ref | None
    handler: str  # the handler's qualified name, "" when it cannot be told
    line: int
    detail: str


@dataclass(frozen=True)
class Task:
    """A Celery task definition; name is the explicit ``name=`` or empty."""

    qualname: str
    name: str
    line: int


@dataclass(frozen=True)
class Endpoint:
    """A URL pattern or router registration and the view it routes to."""

    route: str
    view: Ref  # for an include(): the URLconf module, as a name or a "text" literal
    line: int
    detail: str


@dataclass(frozen=True)
class Import:
    """An imported module or name; ``app_relative`` for class loaders (django-oscar's
    ``get_class("order.utils", ...)``), whose first part is an app label."""

    target: str
    line: int
    detail: str
    app_relative: bool = False


@dataclass(frozen=True)
class MigrationDep:
    """A migration's dependency on another app; ``app`` "" for the AUTH_USER_MODEL's app."""

    app: str
    line: int
    detail: str


@dataclass(frozen=True)
class Located:
    """A value found at a line: signal definitions, notes, parse errors."""

    value: str
    line: int
    detail: str


@dataclass(frozen=True)
class FileFacts:
    """Everything the analyzer keeps from one file; the syntax tree itself is dropped."""

    path: str
    module: str
    is_package: bool
    lines: int
    imports: tuple[Import, ...] = ()
    aliases: tuple[tuple[str, Ref], ...] = ()
    star_imports: tuple[str, ...] = ()
    classes: tuple[ClassFact, ...] = ()
    uses: tuple[Use, ...] = ()
    receivers: tuple[Receiver, ...] = ()
    tasks: tuple[Task, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    signals: tuple[Located, ...] = ()
    installed_apps: tuple[str, ...] = ()
    auth_user_model: str = ""
    migration_deps: tuple[MigrationDep, ...] = ()
    is_migration: bool = False
    includes: tuple[Endpoint, ...] = ()  # include("app.urls") under a prefix: route, module
    unresolved: tuple[Located, ...] = ()
    parse_error: Located | None = None
