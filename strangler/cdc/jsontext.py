"""JSON column values kept exact between databases.

Envelopes are decoded with numbers that have a fraction as `Decimal` (money stays exact), which
`json.dumps` cannot write; `dumps` writes them with the digits the source database wrote. A row
image cannot tell JSON `null` from SQL NULL (both are `null` in it): a NOT NULL target column
gets JSON `null`, a nullable one SQL NULL, as Django itself stores `None`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.db import models


def dumps(value: Any, sort_keys: bool = False) -> str:
    """JSON text of a decoded value; a Decimal is written with exactly its digits."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        return (
            "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v, sort_keys)}" for k, v in items) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v, sort_keys) for v in value) + "]"
    return json.dumps(value)


def db_value(field: models.JSONField, value: Any) -> str | None:
    """What the upsert writes for a JSON column: its JSON text, or SQL NULL."""
    if value is None and field.null:
        return None
    return dumps(value)


def _exact(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)).normalize()
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def canonical(value: Any, parse: bool) -> str:
    """One text per JSON value, so both sides of a reconcile compare equal when equal.

    `parse`: the value is JSON text (a source column read with SQL), not a decoded value.
    """
    if parse and isinstance(value, str):
        value = json.loads(value, parse_float=Decimal)
    return dumps(_exact(value), sort_keys=True)
