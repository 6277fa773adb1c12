"""Whether a target column holds a value exactly: checked before the consumer writes a row.

PostgreSQL's explicit casts in the upsert (`varchar(n)`, `numeric(p, s)`) truncate strings and
round numbers without an error, and `int()` drops a fraction: a value that would change is
refused (the event is dead-lettered with the reason) instead of being written altered.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

INTEGER_TYPES = frozenset(
    {
        "SmallIntegerField",
        "IntegerField",
        "BigIntegerField",
        "PositiveSmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "SmallAutoField",
        "AutoField",
        "BigAutoField",
    }
)


def decimal_shape(value: Decimal) -> tuple[int, int]:
    """(digits before the point, digits after it) of a finite decimal, trailing zeros dropped."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0, 0
    # A non-zero coefficient has no leading zeros: every digit up to the trailing zeros counts.
    significant = len(digits)
    while exponent < 0 and digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    return max(0, significant + exponent), max(0, -exponent)


Check = Callable[[Any, Any], str | None]  # (value from the image, Python value) -> reason


def checker(field: models.Field, connection: BaseDatabaseWrapper) -> Check | None:
    """The exactness check of `field`'s column (None when any value of its type fits)."""
    if field.is_relation:
        field = field.target_field
    kind = field.get_internal_type()
    if isinstance(field, models.DecimalField):
        return partial(_decimal, field.max_digits, field.decimal_places)
    if kind in INTEGER_TYPES:
        low, high = connection.ops.integer_field_range(kind)
        return partial(_integer, kind, low, high)
    max_length = getattr(field, "max_length", None)
    return partial(_length, max_length) if max_length else None


def _decimal(max_digits: int, places: int, source: Any, value: Any) -> str | None:
    if not (isinstance(value, Decimal) and value.is_finite()):
        return None
    whole, scale = decimal_shape(value)
    capacity = f"numeric({max_digits}, {places})"
    if scale > places:
        return f"{value} has {scale} decimal places; {capacity} would round it"
    if whole > max_digits - places:
        return f"{value} has {whole} digits before the point; {capacity} cannot hold it"
    return None


def _integer(kind: str, low: int | None, high: int | None, source: Any, value: Any) -> str | None:
    if isinstance(source, Decimal | float) and source != value:
        return f"{source} is not an integer; the {kind} would drop its fraction"
    if (low is not None and value < low) or (high is not None and value > high):
        return f"{value} is outside the {kind} range [{low}, {high}]"
    return None


def _length(max_length: int, source: Any, value: Any) -> str | None:
    if isinstance(value, str) and len(value) > max_length:
        return f"{len(value)} characters; varchar({max_length}) would truncate it"
    return None
