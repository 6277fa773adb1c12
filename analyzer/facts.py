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
    "read", "write", "raw_sql", "task_call", "send_task", "signal_send", "admin", "lookup"
]

FACTS_VERSION = 5  # bump when extraction changes, so cached facts are recomputed


@dataclass(frozen=True)
class Relation:
    """A relation field on a model class (ForeignKey, OneToOneField, ManyToManyField, ...)."""

    field: str
    kind: str
    target: str
    line: int
    detail: str
    related_name: str = ""


@dataclass(frozen=True)
class ClassFact:
    """A class defined outside any function: a model, an AppConfig, a view, anything."""

    name: str
    line: int
    bases: tuple[str, ...]
    meta: tuple[tuple[str, str], ...]
    attrs: tuple[tuple[str, str], ...]
    relations: tuple[Relation, ...]
    has_fields: bool


@dataclass(frozen=True)
class Use:
    """One place where code touches something: a model, a task, a signal, a table."""

    kind: UseKind
    target: str
    line: int
    scope: str
    detail: str


@dataclass(frozen=True)
class Receiver:
    """A signal receiver: ``@receiver(signal, sender=X)`` or ``signal.connect(handler, ...)``."""

    signal: str
    sender: str
    handler: str
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
    view: str
    line: int
    detail: str


@dataclass(frozen=True)
class Located:
    """A value found at a line: imports, signal definitions, migration dependencies, notes."""

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
    imports: tuple[Located, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    star_imports: tuple[str, ...] = ()
    classes: tuple[ClassFact, ...] = ()
    uses: tuple[Use, ...] = ()
    receivers: tuple[Receiver, ...] = ()
    tasks: tuple[Task, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    signals: tuple[Located, ...] = ()
    installed_apps: tuple[str, ...] = ()
    auth_user_model: str = ""
    migration_deps: tuple[Located, ...] = ()
    is_migration: bool = False
    includes: tuple[Endpoint, ...] = ()  # include("app.urls") under a prefix: route, module
    unresolved: tuple[Located, ...] = ()
    parse_error: Located | None = None
