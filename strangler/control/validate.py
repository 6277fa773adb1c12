"""Turn a raw route table (parsed TOML/JSON) into a RouteTable, or report every problem.

Nothing is built unless the whole table is valid, so a bad push never half-applies.
Message ids are stable and documented in docs/control.md.
"""

from __future__ import annotations

import math
import re
from typing import Any, cast
from urllib.parse import urlsplit

from strangler.control.messages import Message
from strangler.control.model import (
    BACKEND_DEFAULTS,
    BACKEND_OPTIONS,
    ROUTE_STATES,
    STICKY_KINDS,
    Backend,
    Override,
    Route,
    RouteState,
    RouteTable,
    Settings,
    StickySource,
    parse_weight,
)
from strangler.control.reserved import RESERVED_HEADERS
from strangler.control.shadow import parse_shadow

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
TOP_KEYS = {"default_backend", "settings", "backends", "routes", "version"}
BACKEND_KEYS = {"url", *BACKEND_OPTIONS}
ROUTE_KEYS = {
    "id",
    "prefix",
    "regex",
    "methods",
    "host",
    "monolith",
    "service",
    "weight",
    "state",
    "sticky",
    "override",
    "shadow",
}
SETTINGS_KEYS = {
    "backend_header",
    "max_header_bytes",
    "max_body_bytes",
    "client_header_timeout",
    "client_body_timeout",
    "max_connections",
}
TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
PLAIN_PATH = re.compile(r"/(?:[^/?#\s\x00-\x1f\x7f]+/)*[^/?#\s\x00-\x1f\x7f]*")  # no empty segment


class _Collector:
    """Gathers messages while parsing so every problem is reported, not just the first."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def error(self, id_: str, where: str, message: str, hint: str = "") -> None:
        self.messages.append(Message(id_, where, message, hint))

    def unknown_keys(self, raw: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(raw) - allowed):
            self.error(
                "route.E021",
                f"{where}.{key}",
                f"unknown key {key!r}",
                f"allowed keys: {', '.join(sorted(allowed))}",
            )

    def typed(
        self,
        raw: dict[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        where: str,
        default: Any = None,
        required: bool = False,
    ) -> Any:
        if key not in raw:
            if required:
                self.error("route.E002", f"{where}.{key}", "required field is missing")
            return default
        value = raw[key]
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            value_ok = False
        else:
            value_ok = isinstance(value, kind)
        if not value_ok:
            names = " or ".join(k.__name__ for k in _as_tuple(kind))
            self.error("route.E003", f"{where}.{key}", f"expected {names}, got {value!r}")
            return default
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _parse_backend(c: _Collector, name: str, raw: Any) -> Backend | None:
    where = f"backends.{name}"
    if not TOKEN.match(name):
        c.error("route.E003", where, "backend names are letters, digits, '_', '.', '-'")
    if not isinstance(raw, dict):
        c.error("route.E003", where, "a backend is a table with at least `url`")
        return None
    c.unknown_keys(raw, BACKEND_KEYS, where)
    url = c.typed(raw, "url", str, where, required=True)
    host, port = "", 0
    if url is not None:
        parts = urlsplit(url)
        try:
            port = parts.port or 80
        except ValueError:
            port = 0
        host = parts.hostname or ""
        if parts.scheme != "http" or not host or not port or parts.path not in ("", "/"):
            c.error(
                "route.E004",
                f"{where}.url",
                f"{url!r} is not a usable backend URL",
                "use http://HOST:PORT (no path); TLS to backends is not supported yet",
            )
    numbers = {}
    for key, kind in (
        ("connect_timeout", (int, float)),
        ("timeout", (int, float)),
        ("breaker_failures", int),
        ("breaker_error_rate", (int, float)),
        ("breaker_window", int),
        ("breaker_cooldown", (int, float)),
    ):
        value = c.typed(raw, key, kind, where, default=BACKEND_DEFAULTS[key])
        if not math.isfinite(value) or value <= 0 or (key == "breaker_error_rate" and value > 1):
            c.error(
                "route.E016",
                f"{where}.{key}",
                f"must be a finite positive number{' at most 1' if 'rate' in key else ''}, "
                f"got {value!r}",
            )
        numbers[key] = value
    health = c.typed(raw, "health_path", str, where, default=BACKEND_DEFAULTS["health_path"])
    if not health.startswith("/"):
        c.error("route.E010", f"{where}.health_path", "must start with '/'")
    return Backend(name=name, url=url or "", host=host, port=port, health_path=health, **numbers)


def _parse_sticky(c: _Collector, raw: Any, where: str) -> tuple[StickySource, ...]:
    if raw is None:
        return (StickySource("client_address"),)
    if not isinstance(raw, list) or not raw:
        c.error(
            "route.E012",
            where,
            "sticky is a non-empty list such as "
            '["header:X-User-ID", "cookie:sessionid", "jwt_sub", "client_address"]',
        )
        return ()
    sources = []
    for i, spec in enumerate(raw):
        kind, _, name = str(spec).partition(":")
        if kind in ("header", "cookie"):
            ok = bool(name) and (kind == "cookie" or HEADER_NAME.match(name) is not None)
        else:
            ok = kind in STICKY_KINDS and not name
        ok = ok and isinstance(spec, str)
        if not ok:
            c.error(
                "route.E012",
                f"{where}[{i}]",
                f"bad sticky source {spec!r}",
                "use header:NAME, cookie:NAME, jwt_sub or client_address",
            )
            continue
        sources.append(StickySource(kind, name))
    if sources and sources[-1].kind != "client_address":
        sources.append(StickySource("client_address"))
    return tuple(sources)


def _parse_route(c: _Collector, i: int, raw: Any, backends: dict[str, Backend]) -> Route | None:
    where = f"routes[{i}]"
    if not isinstance(raw, dict):
        c.error("route.E003", where, "a route is a table")
        return None
    route_id = c.typed(raw, "id", str, where, required=True)
    if route_id is not None:
        where = f"routes[{i}] ({route_id})"
        if not TOKEN.match(route_id):
            c.error("route.E003", f"{where}.id", "route ids are letters, digits, '_', '.', '-'")
    c.unknown_keys(raw, ROUTE_KEYS, where)
    prefix = c.typed(raw, "prefix", str, where, default="")
    regex = c.typed(raw, "regex", str, where, default="")
    if bool(prefix) == bool(regex):
        c.error("route.E010", where, "a route needs exactly one of `prefix` or `regex`")
    if prefix and not prefix.startswith("/"):
        c.error("route.E010", f"{where}.prefix", f"{prefix!r} must start with '/'")
    elif prefix and not PLAIN_PATH.fullmatch(prefix):
        # `//` matched every path (slashes stripped, nothing left); `?`, `#` none.
        c.error("route.E010", f"{where}.prefix", f"{prefix!r} is not a plain path: no empty "
                "segment (//), '?', '#', spaces or control characters")  # fmt: skip
    if regex:
        try:
            re.compile(regex)
        except re.error as error:
            c.error("route.E009", f"{where}.regex", f"{regex!r} does not compile: {error}")
    methods = c.typed(raw, "methods", list, where, default=[])
    for method in methods:
        if method not in METHODS:
            c.error(
                "route.E011",
                f"{where}.methods",
                f"unknown method {method!r}",
                f"use upper case, one of {', '.join(sorted(METHODS))}",
            )
    host = c.typed(raw, "host", str, where, default="").lower()
    if host and not HOST_NAME.match(host):
        c.error(
            "route.E024",
            f"{where}.host",
            f"{host!r} is not a bare host name",
            "no port, scheme or path: requests match on the Host header without its port",
        )
    roles = {}
    for role in ("monolith", "service"):
        name = c.typed(raw, role, str, where, required=True)
        if name is not None and name not in backends:
            c.error(
                "route.E007",
                f"{where}.{role}",
                f"unknown backend {name!r}",
                f"declare it under [backends.{name}] or use one of {', '.join(sorted(backends))}",
            )
        roles[role] = name
    if roles["monolith"] and roles["monolith"] == roles["service"]:
        c.error("route.E019", where, "monolith and service are the same backend")
    weight = parse_weight(raw.get("weight", 0))
    if weight is None:
        c.error(
            "route.E008",
            f"{where}.weight",
            f"{raw.get('weight')!r} is not a weight",
            "a number from 0 to 100 with at most two decimals",
        )
    state = c.typed(raw, "state", str, where, default="")
    if state and state not in ROUTE_STATES:
        c.error(
            "route.E013",
            f"{where}.state",
            f"unknown state {state!r}",
            f"one of {', '.join(ROUTE_STATES)}",
        )
    elif weight is not None:
        state = state or ("monolith" if weight == 0 else "service" if weight == 100 else "canary")
        expected = {
            "monolith": weight == 0,
            "canary": 0 < weight < 100,
            "service": weight == 100,
            "retired": weight == 100,
        }[state]
        if not expected:
            c.error(
                "route.E013",
                f"{where}.state",
                f"state {state!r} contradicts weight {weight}",
                "monolith = 0, canary = between 0 and 100, service and retired = 100",
            )
    sticky = _parse_sticky(c, raw.get("sticky"), f"{where}.sticky")
    override = None
    if "override" in raw:
        spec = raw["override"]
        if (
            not isinstance(spec, dict)
            or set(spec) != {"header", "secret"}
            or not isinstance(spec.get("header"), str)
            or not HEADER_NAME.match(spec["header"])
            or spec["header"].lower() in RESERVED_HEADERS
            or not isinstance(spec.get("secret"), str)
            or len(spec["secret"]) < 16
            or not (spec["secret"].isascii() and spec["secret"].isprintable())
        ):
            c.error(
                "route.E017",
                f"{where}.override",
                "override needs `header` (not one HTTP or the proxy uses, such as Host) "
                "and a `secret` of at least 16 characters",
                'override = {header = "X-Strangler-Force", secret = "..."}',
            )
        else:
            override = Override(spec["header"], spec["secret"])
    shadow = None
    if "shadow" in raw:
        shadow, problems = parse_shadow(
            raw["shadow"], where, roles["monolith"], roles["service"], backends, METHODS
        )
        c.messages.extend(problems)
    if route_id is None or weight is None or None in roles.values():
        return None
    return Route(
        id=route_id,
        monolith=roles["monolith"],
        service=roles["service"],
        weight=weight,
        state=cast(RouteState, state),  # checked against ROUTE_STATES above
        prefix=prefix,
        regex=regex,
        methods=tuple(methods),
        host=host,
        sticky=sticky,
        override=override,
        shadow=shadow,
    )


def _segment_prefix(outer: str, inner: str) -> bool:
    """True when every path under `inner` is also under `outer` (segment-aware)."""
    outer = outer.rstrip("/")
    return inner.rstrip("/") == outer or inner.startswith(outer + "/") or outer == ""


def _check_reachability(c: _Collector, routes: list[Route]) -> None:
    """First match wins, so a later route an earlier one fully covers can never be reached."""
    for j, later in enumerate(routes):
        for earlier in routes[:j]:
            if not (earlier.prefix and later.prefix):
                continue
            if earlier.host and earlier.host != later.host:
                continue
            same_paths = earlier.prefix.rstrip("/") == later.prefix.rstrip("/")
            if not _segment_prefix(earlier.prefix, later.prefix):
                continue
            m_earlier, m_later = set(earlier.methods or METHODS), set(later.methods or METHODS)
            if m_later <= m_earlier:
                c.error(
                    "route.E014",
                    f"routes ({later.id})",
                    f"unreachable: route {earlier.id!r} "
                    f"comes first and matches everything it matches",
                    "put the more specific route first, or narrow the earlier one",
                )
            elif same_paths and m_earlier & m_later:
                c.error(
                    "route.E015",
                    f"routes ({later.id})",
                    f"overlaps route {earlier.id!r} on "
                    f"{earlier.prefix} for {', '.join(sorted(m_earlier & m_later))}",
                    "give each method set to one route",
                )


def parse_table(raw: Any) -> tuple[RouteTable | None, list[Message]]:
    """Validate a whole raw table; returns (table, []) or (None, every problem found)."""
    c = _Collector()
    if not isinstance(raw, dict):
        c.error(
            "route.E001", "<table>", "a route table is a mapping (TOML document or JSON object)"
        )
        return None, c.messages
    c.unknown_keys(raw, TOP_KEYS, "<table>")
    raw_backends = c.typed(raw, "backends", dict, "<table>", default={}, required=True)
    backends: dict[str, Backend] = {}
    for name, spec in raw_backends.items():
        backend = _parse_backend(c, str(name), spec)
        if backend is not None:
            backends[str(name)] = backend
    default = c.typed(raw, "default_backend", str, "<table>", required=True)
    if default is not None and default not in backends:
        c.error(
            "route.E018",
            "default_backend",
            f"unknown backend {default!r}",
            "unknown paths go here: name the monolith's backend",
        )
    raw_routes = c.typed(raw, "routes", list, "<table>", default=[])
    routes = []
    seen: set[str] = set()
    for i, spec in enumerate(raw_routes):
        route = _parse_route(c, i, spec, backends)
        if route is None:
            continue
        if route.id in seen:
            c.error("route.E006", f"routes[{i}].id", f"duplicate route id {route.id!r}")
        seen.add(route.id)
        routes.append(route)
    _check_reachability(c, routes)
    settings = _parse_settings(c, raw.get("settings", {}))
    if c.messages or default is None:
        return None, c.messages
    return RouteTable(default, backends, tuple(routes), settings), []


def _parse_settings(c: _Collector, raw: Any) -> Settings:
    if not isinstance(raw, dict):
        c.error("route.E020", "settings", "settings is a table")
        return Settings()
    c.unknown_keys(raw, SETTINGS_KEYS, "settings")
    header = c.typed(raw, "backend_header", str, "settings", default=Settings.backend_header)
    if header and (not HEADER_NAME.match(header) or header.lower() in RESERVED_HEADERS):
        c.error(
            "route.E020",
            "settings.backend_header",
            f"{header!r} is not a header name of its own",
            'pick a name such as X-Strangler-Backend (not one HTTP or the proxy uses), or ""'
            " to turn the header off",
        )
    limits: dict[str, Any] = {}
    for key, floor in (("max_header_bytes", 1024), ("max_body_bytes", 0), ("max_connections", 1)):
        value = c.typed(raw, key, int, "settings", default=getattr(Settings, key))
        if value < floor:
            c.error("route.E020", f"settings.{key}", f"must be at least {floor}, got {value}")
        limits[key] = value
    for key in ("client_header_timeout", "client_body_timeout"):
        value = c.typed(raw, key, (int, float), "settings", default=getattr(Settings, key))
        if not math.isfinite(value) or value < 0.1:
            c.error(
                "route.E020",
                f"settings.{key}",
                f"must be a number of seconds of at least 0.1, got {value!r}",
            )
        limits[key] = float(value)
    return Settings(backend_header=header, **limits)
