"""The route table as immutable facts: backends, routes, settings.

A table is only ever built by `strangler.control.validate.parse_table`, so every instance
in a running process has passed validation as a whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from strangler.control.shadow import ShadowPolicy

RouteState = Literal["monolith", "canary", "service", "retired"]
ROUTE_STATES: tuple[RouteState, ...] = get_args(RouteState)
Role = Literal["monolith", "service"]  # which of a route's two backends a request goes to
TYPED_WEIGHT = re.compile(r"[0-9]+(\.[0-9]+)?")  # a weight or share as text: 12 or 12.5
STICKY_KINDS = ("header", "cookie", "jwt_sub", "client_address")


@dataclass(frozen=True)
class Backend:
    """An upstream the proxy may forward to; nothing outside the table is ever reachable."""

    name: str
    url: str
    host: str
    port: int
    connect_timeout: float = 1.0
    timeout: float = 30.0
    health_path: str = "/"
    breaker_failures: int = 5
    breaker_error_rate: float = 0.5
    breaker_window: int = 20
    breaker_cooldown: float = 5.0


# Backend fields a table may set besides `url` (everything but the parsed host and port).
BACKEND_OPTIONS = (
    "connect_timeout",
    "timeout",
    "health_path",
    "breaker_failures",
    "breaker_error_rate",
    "breaker_window",
    "breaker_cooldown",
)
# The one place backend defaults are written: the dataclass above.
BACKEND_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(Backend) if f.name in BACKEND_OPTIONS
}


@dataclass(frozen=True)
class StickySource:
    """Where a sticky key comes from: header:NAME, cookie:NAME, jwt_sub or client_address."""

    kind: str
    name: str = ""

    def spec(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind

    # Computed once per table load, read on every request.
    @cached_property
    def label(self) -> str:
        return self.spec()

    @cached_property
    def header_key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Override:
    """A header testers send as `ROLE:SECRET` (ROLE = monolith|service) to force a backend."""

    header: str
    secret: str


@dataclass(frozen=True)
class Route:
    """Traffic matching prefix/regex (and methods, host) split between monolith and service."""

    id: str
    monolith: str
    service: str
    weight: Decimal
    state: RouteState
    prefix: str = ""
    regex: str = ""
    methods: tuple[str, ...] = ()
    host: str = ""
    sticky: tuple[StickySource, ...] = (StickySource("client_address"),)
    override: Override | None = None
    shadow: ShadowPolicy | None = None

    @cached_property
    def threshold(self) -> int:
        """Buckets below this number (0..10000) go to the service (computed once per table)."""
        return int(self.weight * 100)


@dataclass(frozen=True)
class Settings:
    """Proxy-wide knobs that belong with the table so they are versioned too."""

    backend_header: str = "X-Strangler-Backend"
    max_header_bytes: int = 16384
    max_body_bytes: int = 10 * 1024 * 1024
    client_header_timeout: float = 15.0  # s from a request's first byte to its last header
    client_body_timeout: float = 30.0  # s a request body, or a client reading its answer, may stall
    max_connections: int = 4096  # open client connections per worker; more get a 503


@dataclass(frozen=True)
class RouteTable:
    """The whole validated table; the proxy swaps it by replacing one reference."""

    default_backend: str
    backends: dict[str, Backend] = field(hash=False)
    routes: tuple[Route, ...]
    settings: Settings = Settings()

    def route(self, route_id: str) -> Route | None:
        return next((r for r in self.routes if r.id == route_id), None)


def weight_number(weight: Decimal) -> int | float:
    """A weight as the JSON/TOML number a human wrote: 25 not 25.00, 12.5 stays 12.5."""
    return int(weight) if weight == weight.to_integral_value() else float(weight)


def table_to_dict(table: RouteTable) -> dict[str, Any]:
    """The table in the documented file format (what parse_table reads back unchanged)."""
    from strangler.control.shadow import shadow_to_dict  # shadow.py builds on this module

    backends: dict[str, Any] = {}
    for name, b in table.backends.items():
        entry: dict[str, Any] = {"url": b.url}
        for key in BACKEND_OPTIONS:
            if getattr(b, key) != BACKEND_DEFAULTS[key]:
                entry[key] = getattr(b, key)
        backends[name] = entry
    routes = []
    for r in table.routes:
        entry = {"id": r.id}
        entry.update({"prefix": r.prefix} if r.prefix else {"regex": r.regex})
        if r.methods:
            entry["methods"] = list(r.methods)
        if r.host:
            entry["host"] = r.host
        entry.update(
            monolith=r.monolith,
            service=r.service,
            weight=weight_number(r.weight),
            state=r.state,
            sticky=[s.spec() for s in r.sticky],
        )
        if r.override:
            entry["override"] = {"header": r.override.header, "secret": r.override.secret}
        if r.shadow:
            entry["shadow"] = shadow_to_dict(r.shadow, r.service)
        routes.append(entry)
    s = table.settings
    return {
        "default_backend": table.default_backend,
        "settings": {
            "backend_header": s.backend_header,
            "max_header_bytes": s.max_header_bytes,
            "max_body_bytes": s.max_body_bytes,
            "client_header_timeout": s.client_header_timeout,
            "client_body_timeout": s.client_body_timeout,
            "max_connections": s.max_connections,
        },
        "backends": backends,
        "routes": routes,
    }


def state_for_weight(weight: Decimal, current: str) -> RouteState:
    """The state a weight implies: 0 monolith, 100 service (retired stays retired), else canary."""
    if weight == 0:
        return "monolith"
    if weight == 100:
        return "retired" if current == "retired" else "service"
    return "canary"


def parse_weight(value: Any) -> Decimal | None:
    """A weight 0-100 with at most two decimals, or None if it is not one. Typed text must be
    plain ASCII digits: Decimal reads "10_0" as 100, an Arabic-Indic "٣" as 3 and "1e1" as 10."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    if isinstance(value, str) and not TYPED_WEIGHT.fullmatch(value):
        return None
    try:
        weight = Decimal(str(value))
    except InvalidOperation:
        return None
    if not weight.is_finite() or weight < 0 or weight > 100:
        return None
    if weight != weight.quantize(Decimal("0.01")):
        return None
    return weight.quantize(Decimal("0.01"))
