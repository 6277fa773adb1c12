"""Edge weights by dependency kind: how hard each kind binds two elements together.

A relation or a write binds harder than a read or an import because cutting it means moving
data ownership, not just replacing a call. Override any of them in boundaries.toml [weights].
"""

from __future__ import annotations

from typing import Literal, get_args

EdgeKind = Literal[
    "defines",
    "inherits",
    "abstract_base",
    "shared_table",
    "relation",
    "write",
    "raw_sql",
    "signal",
    "task",
    "read",
    "admin",
    "route",
    "same_app",
    "import",
    "migration",
    "cochange",
]
EDGE_KINDS: tuple[EdgeKind, ...] = get_args(EdgeKind)


def edge_kind(name: str) -> EdgeKind | None:
    """The edge kind spelled ``name`` (from a user's file), or None."""
    return next((kind for kind in EDGE_KINDS if kind == name), None)


DEFAULT_WEIGHTS: dict[EdgeKind, float] = {
    "defines": 10.0,  # a module defines the model (models.py and its classes)
    "inherits": 8.0,  # multi-table or proxy inheritance between concrete models
    "abstract_base": 0.5,  # a model built on an abstract base in another module (code reuse)
    "shared_table": 8.0,  # two models over one table
    "relation": 5.0,  # ForeignKey / OneToOne / ManyToMany between models
    "write": 3.0,  # create/update/delete through the ORM
    "raw_sql": 3.0,  # SQL naming a model's table
    "signal": 2.0,  # a receiver of another part's model or custom signal
    "task": 2.0,  # .delay / .apply_async / send_task into another module's task
    "read": 1.0,  # ORM reads, get_model, lookups across relations
    "admin": 1.0,  # admin registration of a model
    "route": 0.5,  # a URLconf routing to a view module
    "same_app": 4.0,  # a module and the models of its own app (spread over the models)
    "import": 0.5,  # a plain import of a project module
    "migration": 0.5,  # a migration depending on another app's migration
    "cochange": 2.0,  # files changed together in git history (x min(commits, 5) / 5)
}

CUT_SUGGESTIONS: dict[EdgeKind, str] = {
    "defines": "move the model together with the module that defines it",
    "inherits": "replace inheritance across contexts with composition or a copy of the fields",
    "abstract_base": "copy the abstract base into the extracted service or publish it as a "
    "small shared library",
    "shared_table": "a shared table needs one owner: give it to one context and let the other "
    "read through an API or a replicated copy",
    "relation": "turn the foreign key into a plain id column and keep it fresh with change "
    "events from the owning context",
    "write": "writes must go through the owning context: call its API or send it a command",
    "raw_sql": "raw SQL on another context's table becomes an API call or a read model fed by "
    "change events",
    "signal": "turn the signal into a published event the other context consumes",
    "task": "call the task through a queue topic or the owning context's API instead of "
    "importing it",
    "read": "replace the read with an API call, or a local read model fed by change events",
    "admin": "move the admin registration to the owning context",
    "route": "route the URL to the owning service at the proxy",
    "same_app": "this module sits in the app but works for another context: move it there",
    "import": "move the shared code to a library or call the owning context's API",
    "migration": "the migration dependency disappears once the relation above is cut",
    "cochange": "files that change together across contexts: check the boundary is drawn "
    "where the team's changes fall",
}
