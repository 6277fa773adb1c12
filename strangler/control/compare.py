"""How a route's responses are compared in parity tests: normalizers as validated data.

The comparison config lives in the route table (under a route's `shadow.compare`) so it is
versioned and audited with the weights; `strangler.parity` compiles and applies it.
Messages use the route.E045-E048 ids documented in docs/control.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from strangler.control.messages import Message

TimestampPrecision = Literal["", "ms", "s", "min"]
TIMESTAMP_PRECISIONS: tuple[TimestampPrecision, ...] = ("", "ms", "s", "min")
# Response headers compared by default: the ones a client acts on; Date, Server, ETag vary by
# instance and say nothing about behaviour.
DEFAULT_HEADERS = ("content-type", "location", "cache-control", "set-cookie")
COMPARE_KEYS = {
    "ignore",
    "numeric_tolerance",
    "decimal_strings",
    "timestamp_precision",
    "unordered",
    "list_keys",
    "headers",
    "endpoints",
}
# A field path: names joined by dots, list items as [*]; globs may use * and ** in names.
FIELD_PATH = re.compile(r"^(\*\*|[^.\[\]\s]+|\[\*\])(\.(\*\*|[^.\[\]\s]+)|\[\*\])*$")
ENDPOINT_KEY = re.compile(r"^[A-Z]+ /\S*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
HEADER_GLOB = re.compile(r"^[A-Za-z0-9*-]+$")  # the NAME of an ignored header:NAME
# A glob of wildcards alone, every segment `*`, `?`, `**` or `[*]` (`**`, `?`, `[*]`, `[*].*`,
# `*.*`): it names no field, matches every field at its depth, and an ignore matches everything
# under what it matches, so it would ignore whole bodies (`[*]` every item of a list body):
# parity 100% by construction.
WILDCARDS_ALONE = re.compile(r"^(?:[*?]+|\[\*\])(?:\.[*?]+|\[\*\])*$")


@dataclass(frozen=True)
class CompareConfig:
    """Normalizers for one route or endpoint; an endpoint's entry refines its route's."""

    ignore: tuple[str, ...] = ()
    numeric_tolerance: float = 0.0
    decimal_strings: bool = False
    timestamp_precision: TimestampPrecision = ""
    unordered: tuple[str, ...] = ()
    list_keys: tuple[tuple[str, str], ...] = ()
    headers: tuple[str, ...] = DEFAULT_HEADERS
    endpoints: tuple[tuple[str, CompareConfig], ...] = field(default=())

    def for_endpoint(self, endpoint: str) -> CompareConfig:
        """This config with an endpoint's refinements: lists extend, scalars replace."""
        for key, override in self.endpoints:
            if key == endpoint:
                return merge(self, override)
        return self


def merge(base: CompareConfig, override: CompareConfig) -> CompareConfig:
    """`override` over `base`: ignore/unordered/list_keys extend, the scalars it sets replace."""
    default = CompareConfig()
    return CompareConfig(
        ignore=base.ignore + override.ignore,
        numeric_tolerance=override.numeric_tolerance or base.numeric_tolerance,
        decimal_strings=override.decimal_strings or base.decimal_strings,
        timestamp_precision=override.timestamp_precision or base.timestamp_precision,
        unordered=base.unordered + override.unordered,
        list_keys=base.list_keys + override.list_keys,
        headers=base.headers if override.headers == default.headers else override.headers,
    )


def _paths(raw: Any, where: str, key: str, messages: list[Message]) -> tuple[str, ...]:
    """Validated field paths; an `ignore` entry matching every field is route.E048."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        messages.append(Message("route.E045", f"{where}.{key}", "expected a list of field paths"))
        return ()
    paths = []
    for path in raw:
        normal = _field_path(path)
        if normal is None:
            messages.append(
                Message(
                    "route.E045",
                    f"{where}.{key}",
                    f"{path!r} names no field",
                    "field paths look like results[*].price or meta.**; list items are [*]; "
                    "headers are header:NAME",
                )
            )
        elif key == "ignore" and WILDCARDS_ALONE.match(normal):
            messages.append(
                Message(
                    "route.E048",
                    f"{where}.{key}",
                    f"{path!r} is wildcards alone, naming no field: it matches every field at "
                    "its depth (every item of a list body for [*]), so whole bodies would be "
                    "ignored and parity 100% by construction",
                    "ignore the fields that differ by design (results[*].updated_at, "
                    "**.updated_at, meta.**); leave a route that cannot be compared unshadowed",
                )
            )
        else:
            paths.append(normal)
    return tuple(paths)


def _field_path(path: str) -> str | None:
    """A field path as the comparison sees it, or None when it names no field: `header:NAME`
    in lower case, as headers are compared (`header:Vary` would otherwise never match)."""
    if path[:7].lower() == "header:":
        name = path[7:]
        return f"header:{name.lower()}" if HEADER_GLOB.match(name) else None
    return path if FIELD_PATH.match(path) else None


def parse_compare(raw: Any, where: str, nested: bool = True) -> tuple[CompareConfig, list[Message]]:
    """Validate a `compare` table; returns (config, every problem found)."""
    messages: list[Message] = []
    if raw is None:
        return CompareConfig(), messages
    if not isinstance(raw, dict):
        return CompareConfig(), [Message("route.E045", where, "compare is a table")]
    allowed = COMPARE_KEYS if nested else COMPARE_KEYS - {"endpoints"}
    for key in sorted(set(raw) - allowed):
        messages.append(
            Message(
                "route.E021",
                f"{where}.{key}",
                f"unknown key {key!r}",
                f"allowed keys: {', '.join(sorted(allowed))}",
            )
        )
    ignore = _paths(raw.get("ignore"), where, "ignore", messages)
    unordered = _paths(raw.get("unordered"), where, "unordered", messages)
    tolerance = raw.get("numeric_tolerance", 0.0)
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        messages.append(
            Message(
                "route.E046",
                f"{where}.numeric_tolerance",
                f"{tolerance!r} is not a finite number >= 0",
            )
        )
        tolerance = 0.0
    decimal_strings = raw.get("decimal_strings", False)
    if not isinstance(decimal_strings, bool):
        messages.append(Message("route.E046", f"{where}.decimal_strings", "expected true/false"))
        decimal_strings = False
    precision = raw.get("timestamp_precision", "")
    if precision not in TIMESTAMP_PRECISIONS:
        messages.append(
            Message(
                "route.E046",
                f"{where}.timestamp_precision",
                f"{precision!r} is not a precision",
                'one of "ms", "s", "min" (or "" for exact)',
            )
        )
        precision = ""
    list_keys_raw = raw.get("list_keys", {})
    list_keys: list[tuple[str, str]] = []
    if not isinstance(list_keys_raw, dict):
        messages.append(
            Message("route.E046", f"{where}.list_keys", 'expected a table {"results" = "id"}')
        )
    else:
        for path, key in list_keys_raw.items():
            if not FIELD_PATH.match(str(path)) or not isinstance(key, str) or not key:
                messages.append(
                    Message(
                        "route.E045",
                        f"{where}.list_keys.{path}",
                        "a list path maps to the name of the key field of its items",
                        'list_keys = {"results" = "id"}',
                    )
                )
                continue
            list_keys.append((str(path), key))
    headers_raw = raw.get("headers", list(DEFAULT_HEADERS))
    if not isinstance(headers_raw, list) or not all(
        isinstance(h, str) and HEADER_NAME.match(h) for h in headers_raw
    ):
        messages.append(
            Message("route.E046", f"{where}.headers", "expected a list of header names")
        )
        headers_raw = list(DEFAULT_HEADERS)
    endpoints: list[tuple[str, CompareConfig]] = []
    endpoints_raw = raw.get("endpoints", {}) if nested else {}
    if not isinstance(endpoints_raw, dict):
        messages.append(Message("route.E047", f"{where}.endpoints", "endpoints is a table"))
        endpoints_raw = {}
    for key, spec in endpoints_raw.items():
        if not ENDPOINT_KEY.match(str(key)):
            messages.append(
                Message(
                    "route.E047",
                    f"{where}.endpoints.{key}",
                    f"{key!r} is not an endpoint",
                    'an endpoint is METHOD and path template: "GET /api/v1/products/{id}"',
                )
            )
            continue
        sub, problems = parse_compare(spec, f"{where}.endpoints.{key}", nested=False)
        messages.extend(problems)
        endpoints.append((str(key), sub))
    config = CompareConfig(
        ignore=ignore,
        numeric_tolerance=float(tolerance),
        decimal_strings=decimal_strings,
        timestamp_precision=precision,
        unordered=unordered,
        list_keys=tuple(list_keys),
        headers=tuple(h.lower() for h in headers_raw),
        endpoints=tuple(endpoints),
    )
    return config, messages


def compare_to_dict(config: CompareConfig, nested: bool = True) -> dict[str, Any]:
    """The config in the table's format, only what differs from the defaults."""
    default = CompareConfig()
    out: dict[str, Any] = {}
    if config.ignore:
        out["ignore"] = list(config.ignore)
    if config.numeric_tolerance:
        out["numeric_tolerance"] = config.numeric_tolerance
    if config.decimal_strings:
        out["decimal_strings"] = True
    if config.timestamp_precision:
        out["timestamp_precision"] = config.timestamp_precision
    if config.unordered:
        out["unordered"] = list(config.unordered)
    if config.list_keys:
        out["list_keys"] = dict(config.list_keys)
    if config.headers != default.headers:
        out["headers"] = list(config.headers)
    if nested and config.endpoints:
        out["endpoints"] = {k: compare_to_dict(v, nested=False) for k, v in config.endpoints}
    return out
