"""The routing decision as pure functions: match a route, compute a bucket, pick a backend.

bucket = blake2b(route id, sticky key) mod 10000, and the service gets buckets below
weight x 100. A key's bucket never changes, so raising a weight only moves keys from the
monolith to the service. blake2b is used (not Python's hash()) because it is stable across
processes, restarts and machines.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Literal, NamedTuple

from strangler.control.model import Role, Route, RouteTable, StickySource

BUCKETS = 10000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT_METHODS = SAFE_METHODS | {"PUT", "DELETE", "TRACE"}
ROLES: dict[str, Role] = {"monolith": "monolith", "service": "service"}
Matcher = Callable[[str], object]  # a path matches when the result is truthy (re.Match too)


def bucket(route_id: str, key: str) -> int:
    """The key's stable bucket in 0..9999 for this route."""
    data = f"{route_id}\0{key}".encode("utf-8", "surrogateescape")
    digest = blake2b(data, digest_size=8, person=b"strangler").digest()
    return int.from_bytes(digest, "big") % BUCKETS


def goes_to_service(route: Route, key_bucket: int) -> bool:
    """True when this bucket is inside the route's service share."""
    if route.state == "monolith":
        return False
    if route.state in ("service", "retired"):
        return True
    return key_bucket < route.threshold


def jwt_sub(authorization: str) -> str:
    """The `sub` claim of a bearer JWT, decoded WITHOUT verifying the signature.

    The claim only spreads users over buckets; it grants nothing, so a forged token can at
    most choose which backend serves its own request, which both backends must handle anyway.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return ""
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return ""
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return str(sub) if sub not in (None, "") else ""


def cookie_value(cookie_header: str, name: str) -> str:
    """One cookie's value from a Cookie header, or ''."""
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return ""


def sticky_key(
    sources: tuple[StickySource, ...], headers: Mapping[str, str], client_address: str
) -> tuple[str, str]:
    """(source spec, key) from the first source that yields one; client address last.

    `headers` keys are lower-case header names.
    """
    for source in sources:
        kind = source.kind
        if kind == "header":
            value = headers.get(source.header_key, "")
        elif kind == "cookie":
            value = cookie_value(headers.get("cookie", ""), source.name)
        elif kind == "jwt_sub":
            value = jwt_sub(headers.get("authorization", ""))
        else:
            value = client_address
        if value:
            return source.label, value
    return "client_address", client_address


def forced_role(route: Route, headers: Mapping[str, str]) -> Role | None:
    """'monolith' or 'service' when the override header carries the right secret, else None."""
    if route.override is None:
        return None
    value = headers.get(route.override.header.lower())
    if not value:
        return None
    role, _, secret = value.partition(":")
    forced = ROLES.get(role)
    if forced is None or not hmac.compare_digest(secret.encode(), route.override.secret.encode()):
        return None
    return forced


class Decision(NamedTuple):
    """Where one request goes, and why (for logs and tests).

    A NamedTuple, not a frozen dataclass: one is built per request and tuples are cheaper.
    """

    route: Route | None
    backend: str
    role: Literal["monolith", "service", "default"]  # "default": no route matched
    bucket: int = -1
    key_source: str = ""


def _path_matcher(route: Route) -> Matcher:
    if route.regex:
        return re.compile(route.regex).match
    prefix = route.prefix.rstrip("/")
    if not prefix:
        return lambda path: True
    slash = prefix + "/"
    return lambda path: path == prefix or path.startswith(slash)


@dataclass(frozen=True)
class CompiledTable:
    """A RouteTable with matchers built once at load time, so requests only run lookups."""

    table: RouteTable
    version: int
    matchers: tuple[tuple[Route, Matcher, frozenset[str], str], ...]
    uses_host: bool
    # Every route's override header, lower-case: removed from every request, whichever
    # route it matched (a browser sending one on all its requests must not leak the secret).
    override_headers: frozenset[bytes]

    @classmethod
    def build(cls, table: RouteTable, version: int) -> CompiledTable:
        return cls(
            table,
            version,
            tuple((r, _path_matcher(r), frozenset(r.methods), r.host) for r in table.routes),
            any(r.host for r in table.routes),
            frozenset(r.override.header.lower().encode() for r in table.routes if r.override),
        )

    def match(self, method: str, path: str, host: str) -> Route | None:
        """The first route whose path, methods and host match; None = default backend.

        The Host is read as Django reads it: without its port, case or a final dot.
        """
        host = host.rsplit(":", 1)[0].lower().removesuffix(".") if host and self.uses_host else ""
        for route, matches, methods, route_host in self.matchers:
            if methods and method not in methods:
                continue
            if route_host and route_host != host:
                continue
            if matches(path):
                return route
        return None

    def decide(
        self, method: str, path: str, headers: Mapping[str, str], client_address: str
    ) -> Decision:
        """Route and backend for one request; the Host header only selects among table routes."""
        route = self.match(method, path, headers.get("host", ""))
        if route is None:
            return Decision(None, self.table.default_backend, "default")
        forced = forced_role(route, headers) if route.override is not None else None
        if forced is not None:
            return Decision(route, getattr(route, forced), forced, -1, "override")
        source, key = sticky_key(route.sticky, headers, client_address)
        b = bucket(route.id, key)
        if goes_to_service(route, b):
            return Decision(route, route.service, "service", b, source)
        return Decision(route, route.monolith, "monolith", b, source)


def decide(
    table: RouteTable, method: str, path: str, headers: Mapping[str, str], client_address: str
) -> Decision:
    """Convenience for one-off decisions (tests, CLI); the proxy keeps a CompiledTable."""
    return CompiledTable.build(table, 0).decide(method, path, headers, client_address)
