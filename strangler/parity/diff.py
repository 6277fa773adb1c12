"""Structural JSON diff: the field paths where two parsed bodies differ, after normalizers.

Paths are generic (`results[*].price`: list positions folded to `[*]`, id-like keys to
`{id}`, `{uuid}`...) so differences count per field, not per item. Pure functions over
parsed JSON; no I/O.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from strangler.parity.endpoint import fold_segment
from strangler.parity.jsonvalue import canonical
from strangler.parity.normalize import Normalizer, truncate_timestamp

DiffKind = Literal[
    "value", "type", "missing", "extra", "status", "header", "text", "varying", "content-type",
    "invalid", "error",
]  # fmt: skip
Difference = tuple[str, DiffKind]
SkipReason = Literal["body_too_large", "too_deep", "compare_failed"]
# Containers nested deeper than this are not compared: no API answers like that, and a walk
# would otherwise run out of stack on a hostile body.
MAX_DEPTH = 100

_NUMBERS = (int, float)
# A key written as words (snake_case, kebab-case, camelCase), however long: a field's name.
NAME_KEY = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)+|[a-z]+(?:[A-Z][a-z]+|[0-9]+)+")
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class Uncomparable(Exception):
    """An exchange that cannot be compared as it is; counted as skipped, never as a match."""

    def __init__(self, reason: SkipReason) -> None:
        super().__init__(reason)
        self.reason: SkipReason = reason


def _child(path: str, key: str) -> str:
    """The path of a key under `path`; keys that are ids (maps keyed by id) fold like path
    segments, so {"17": ..., "18": ...} counts as one field `{id}`, not one per id, except a
    name a token's shape would fold (`inventory_checksum_v2`: fields, not ids). A newline in
    a key is written `\\n`: a comparison's differing fields are stored joined by newlines."""
    if key[:1].isdigit() or len(key) >= 16:
        folded = fold_segment(key)
        key = key if folded == "{token}" and NAME_KEY.fullmatch(key) else folded
    if "\n" in key:
        key = key.replace("\n", "\\n")
    return f"{path}.{key}" if path else key


def _numbers_equal(a: float, b: float, tolerance: float) -> bool:
    return a == b or (tolerance > 0 and abs(a - b) <= tolerance)


def _as_decimal(value: Any) -> Decimal | None:
    """A JSON number, or a string written as one (Decimal() also takes whitespace, `_`, `+`,
    other scripts' digits: strings a client parsing a number refuses), as a Decimal."""
    if type(value) is str and not JSON_NUMBER.fullmatch(value):
        return None
    return Decimal(str(value))


def _scalars(a: Any, b: Any, path: str, norm: Normalizer, out: list[Difference]) -> None:
    """Two scalars (or a scalar and a container) already known to be unequal or of two types."""
    ta, tb = type(a), type(b)
    if ta in _NUMBERS and tb in _NUMBERS:
        if not _numbers_equal(a, b, norm.numeric_tolerance):
            out.append((path, "value"))
        return
    if ta is str and tb is str:
        if norm.timestamp_precision:
            moment = truncate_timestamp(a, norm.timestamp_precision)
            if moment is not None and moment == truncate_timestamp(b, norm.timestamp_precision):
                return
        out.append((path, "value"))
        return
    if norm.decimal_strings and {ta, tb} <= {str, int, float} and (ta is str) != (tb is str):
        left, right = _as_decimal(a), _as_decimal(b)
        if left is not None and right is not None:
            if not _numbers_equal(float(left), float(right), norm.numeric_tolerance):
                out.append((path, "value"))
            return
    out.append((path, "type" if ta is not tb else "value"))


def _canonical(value: Any) -> bytes:
    try:
        return canonical(value)
    except RecursionError as error:
        raise Uncomparable("too_deep") from error


def _lists(
    a: list[Any], b: list[Any], path: str, norm: Normalizer, out: list[Difference], depth: int
) -> None:
    items = f"{path}[*]"
    if norm.unordered is not None and norm.unordered.match(path):
        if sorted(map(_canonical, a)) != sorted(map(_canonical, b)):
            out.append((items, "value"))
        return
    key = norm.list_keys.get(path)
    if key is None:
        _pairwise(a, b, items, norm, out, depth)
        return
    left, right = _by_key(a, key), _by_key(b, key)
    for k, xs in left.items():
        _pairwise(xs, right.get(k, []), items, norm, out, depth)
    if right.keys() - left.keys():
        out.append((items, "extra"))


def _by_key(items: list[Any], key: str) -> dict[bytes, list[Any]]:
    """List items grouped by the value of their `key` field, every item kept (two with the same
    key are two items: a duplicated row is a difference); an item that is no object, or has
    no such field, is grouped by its whole value."""
    groups: dict[bytes, list[Any]] = {}
    for item in items:
        if type(item) is dict and key in item:
            group = _canonical(item[key])
        else:
            group = b"\0" + _canonical(item)
        groups.setdefault(group, []).append(item)
    return groups


def _pairwise(
    a: list[Any], b: list[Any], items: str, norm: Normalizer, out: list[Difference], depth: int
) -> None:
    """Items compared in order; the longer list's rest is missing (primary) or extra."""
    for x, y in zip(a, b, strict=False):
        walk(x, y, items, norm, out, depth)
    if len(a) > len(b):
        out.append((items, "missing"))
    elif len(b) > len(a):
        out.append((items, "extra"))


def walk(
    a: Any, b: Any, path: str, norm: Normalizer, out: list[Difference], depth: int = 0
) -> None:
    """Append every difference between `a` (primary) and `b` (candidate) under `path`.

    Scalars are compared with their types (JSON `true` is not `1`), so no container-level
    `==` shortcut is taken: Python's `True == 1` would hide that difference. Raises
    Uncomparable("too_deep") below MAX_DEPTH nested containers.
    """
    ta = type(a)
    if ta is not type(b):
        _scalars(a, b, path, norm, out)
    elif ta is dict:
        depth += 1
        if depth > MAX_DEPTH:
            raise Uncomparable("too_deep")
        missing = 0
        for key, va in a.items():
            if key not in b:
                out.append((_child(path, key), "missing"))
                missing += 1
                continue
            vb = b[key]
            tv = type(va)
            if tv is type(vb) and tv is not dict and tv is not list and va == vb:
                continue
            walk(va, vb, _child(path, key), norm, out, depth)
        if len(b) > len(a) - missing:
            out.extend((_child(path, key), "extra") for key in b if key not in a)
    elif ta is list:
        depth += 1
        if depth > MAX_DEPTH:
            raise Uncomparable("too_deep")
        _lists(a, b, path, norm, out, depth)
    elif a != b:
        _scalars(a, b, path, norm, out)


def diff_json(a: Any, b: Any, norm: Normalizer) -> list[Difference]:
    """Every non-ignored difference between two parsed JSON documents, each (path, kind) once.

    The root is named `$`; no `ignore` entry reaches it (it is the whole body, and a key
    named `$` is another field).
    """
    out: list[Difference] = []
    walk(a, b, "", norm, out)
    return [(p or "$", k) for p, k in dict.fromkeys(out) if not (p and norm.ignored(p))]
