"""Endpoint = method + path template: high-cardinality path segments folded to placeholders.

So 10,000 product URLs count as one endpoint (`GET /api/v1/products/{id}`), not 10,000.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_HEX = "[0-9a-fA-F]"
_RULES = (
    (re.compile(r"^\d+$"), "{id}"),
    (re.compile(f"^{_HEX}{{8}}-?({_HEX}{{4}}-?){{3}}{_HEX}{{12}}$"), "{uuid}"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "{date}"),
    (re.compile(r"^[0-9a-fA-F]{16,}$"), "{hex}"),
    # Long tokens mixing letters and digits (base64 ids, hashids, signed slugs).
    (re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_=-]{20,}$"), "{token}"),
)  # fmt: skip


def fold_segment(segment: str) -> str:
    for pattern, placeholder in _RULES:
        if pattern.match(segment):
            return placeholder
    return segment


def compile_templates(keys: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Configured endpoint keys ("GET /p/{slug}") as (method, segments) for `endpoint_of`."""
    out = []
    for key in keys:
        method, _, template = key.partition(" ")
        if "{" in template:
            out.append((method, tuple(template.strip("/").split("/"))))
    return tuple(out)


def endpoint_of(
    method: str, path: str, templates: tuple[tuple[str, tuple[str, ...]], ...] = ()
) -> str:
    """`GET /api/v1/products/42?x=1` -> `GET /api/v1/products/{id}`; configured templates first."""
    bare = path.split("?", 1)[0].split("#", 1)[0] or "/"
    segments = bare.strip("/").split("/") if bare.strip("/") else []
    for t_method, t_segments in templates:
        if (
            t_method == method
            and len(t_segments) == len(segments)
            and all(t[:1] == "{" or t == s for t, s in zip(t_segments, segments, strict=True))
        ):
            return f"{method} /{'/'.join(t_segments)}"
    folded = "/".join(fold_segment(s) for s in segments)
    trailing = "/" if bare.endswith("/") and segments else ""
    return f"{method} /{folded}{trailing}"
