"""A route's shadow policy: which share of its requests is also sent to a candidate (and a
secondary for noise), off the client's path, and how the answers are compared.

Validated with the table (route.E040-E048, docs/control.md); the proxy reads it, parity
compares with its `compare` part.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from strangler.control.compare import CompareConfig, compare_to_dict, parse_compare
from strangler.control.messages import Message
from strangler.control.model import Backend, parse_weight, weight_number

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SHADOW_HEADER = "X-Strangler-Shadow"  # on every shadow request, so a service can skip side effects
SHADOW_KEYS = {
    "percent",
    "candidate",
    "secondary",
    "methods",
    "sandbox",
    "timeout",
    "max_in_flight",
    "max_body_bytes",
    "record_percent",
    "noise_percent",
    "redact",
    "compare",
}
REDACT_ENTRY = re.compile(r"^(header:[A-Za-z0-9-]+|[^\s:]+)$")


@dataclass(frozen=True)
class ShadowPolicy:
    """Shadowing of one route; `secondary` "" means a second call to the route's monolith."""

    percent: Decimal
    candidate: str
    secondary: str = ""
    methods: tuple[str, ...] = SAFE_METHODS
    sandbox: str = ""
    timeout: float = 5.0
    max_in_flight: int = 64
    max_body_bytes: int = 65536
    record_percent: Decimal = Decimal(0)
    # Share of shadowed requests that also get the secondary (noise) call. The noise model
    # scales noise counts to all comparisons, so a sample learns the same fields while
    # adding a quarter of the load on the monolith.
    noise_percent: Decimal = Decimal(25)
    redact: tuple[str, ...] = ()
    compare: CompareConfig = field(default_factory=CompareConfig)

    @cached_property
    def threshold(self) -> int:
        """The shadow share in buckets (0..10000), computed once per table."""
        return int(self.percent * 100)

    @cached_property
    def noise_share(self) -> float:
        """noise_percent as a 0-1 float, for a per-request draw without Decimal arithmetic."""
        return float(self.noise_percent) / 100

    @cached_property
    def record_share(self) -> float:
        return float(self.record_percent) / 100


def _same_backend(backends: dict[str, Backend], a: str | None, b: str | None) -> bool:
    """Whether `a` and `b` name one backend, or two at one address (a copied URL): parity of
    the monolith against itself, or noise read from the candidate, would pass anything."""
    if not a or not b:
        return False
    one, two = backends.get(a), backends.get(b)
    if a == b or one is None or two is None:
        return a == b
    return (one.host.lower(), one.port) == (two.host.lower(), two.port)


def _address_of(backends: dict[str, Backend], name: str) -> str:
    backend = backends[name]
    return f" ({name!r} is at {backend.host}:{backend.port})"


def parse_shadow(
    raw: Any,
    where: str,
    monolith: str | None,
    service: str | None,
    backends: dict[str, Backend],
    known_methods: frozenset[str],
) -> tuple[ShadowPolicy | None, list[Message]]:
    """Validate a route's `shadow` table; (policy, []) or (None, every problem)."""
    where = f"{where}.shadow"
    if not isinstance(raw, dict):
        return None, [Message("route.E040", where, "shadow is a table such as {percent = 10}")]
    out: list[Message] = []
    for key in sorted(set(raw) - SHADOW_KEYS):
        out.append(
            Message(
                "route.E021",
                f"{where}.{key}",
                f"unknown key {key!r}",
                f"allowed keys: {', '.join(sorted(SHADOW_KEYS))}",
            )
        )
    percents = {}
    for key, fallback_percent in (("percent", 0), ("record_percent", 0), ("noise_percent", 25)):
        value = parse_weight(raw.get(key, fallback_percent))
        if value is None:
            out.append(
                Message(
                    "route.E040",
                    f"{where}.{key}",
                    f"{raw.get(key)!r} is not a percentage",
                    "a number from 0 to 100 with at most two decimals",
                )
            )
        percents[key] = Decimal(fallback_percent) if value is None else value
    names = {}
    for key, fallback in (("candidate", service or ""), ("secondary", ""), ("sandbox", "")):
        name = raw.get(key, fallback)
        if not isinstance(name, str) or (name and name not in backends):
            out.append(
                Message(
                    "route.E041",
                    f"{where}.{key}",
                    f"unknown backend {name!r}",
                    f"one of {', '.join(sorted(backends))}",
                )
            )
            name = ""
        names[key] = name
    if _same_backend(backends, names["candidate"], monolith):
        out.append(
            Message(
                "route.E041",
                f"{where}.candidate",
                "the candidate is the monolith" + _address_of(backends, names["candidate"]),
                "shadow onto the service (the default) or another backend",
            )
        )
    if _same_backend(backends, names["secondary"], names["candidate"]):
        out.append(
            Message(
                "route.E041",
                f"{where}.secondary",
                "the secondary is the candidate" + _address_of(backends, names["secondary"]),
                "name a second monolith instance, or leave it out",
            )
        )
    methods = raw.get("methods", list(SAFE_METHODS))
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        out.append(Message("route.E011", f"{where}.methods", "expected a list of methods"))
        methods = list(SAFE_METHODS)
    for method in methods:
        if method not in known_methods:
            out.append(
                Message(
                    "route.E011", f"{where}.methods", f"unknown method {method!r}", "use upper case"
                )
            )
    writes = sorted((set(methods) & known_methods) - set(SAFE_METHODS))
    if writes and (not names["sandbox"] or names["sandbox"] != names["candidate"]):
        out.append(
            Message(
                "route.E042",
                f"{where}.methods",
                f"{', '.join(writes)} may change data; they are mirrored only to a sandbox",
                "name the candidate as `sandbox` if it is one, or shadow safe methods only",
            )
        )
    limits: dict[str, Any] = {}
    for option, kind, default, low, high in (
        ("timeout", (int, float), 5.0, 0.0, 300.0),
        ("max_in_flight", int, 64, 1, 100_000),
        ("max_body_bytes", int, 65536, 0, 16 * 1024 * 1024),
    ):
        number = raw.get(option, default)
        ok = isinstance(number, kind) and not isinstance(number, bool)
        ok = (
            ok
            and math.isfinite(number)
            and (low < number if option == "timeout" else low <= number)
        )
        if not ok or number > high:
            out.append(
                Message(
                    "route.E043",
                    f"{where}.{option}",
                    f"{number!r} is out of range",
                    f"from {low} to {high}" + (" (more than 0)" if option == "timeout" else ""),
                )
            )
            number = default
        limits[option] = number
    redact = raw.get("redact", [])
    if not isinstance(redact, list) or not all(
        isinstance(r, str) and REDACT_ENTRY.match(r) for r in redact
    ):
        out.append(
            Message(
                "route.E044",
                f"{where}.redact",
                "redact is a list of JSON field names or header:NAME entries",
                'redact = ["email", "header:X-Api-Key"]',
            )
        )
        redact = []
    compare, problems = parse_compare(raw.get("compare"), f"{where}.compare")
    out.extend(problems)
    if out:
        return None, out
    policy = ShadowPolicy(
        percent=percents["percent"],
        candidate=names["candidate"],
        secondary=names["secondary"],
        methods=tuple(methods),
        sandbox=names["sandbox"],
        timeout=float(limits["timeout"]),
        max_in_flight=limits["max_in_flight"],
        max_body_bytes=limits["max_body_bytes"],
        record_percent=percents["record_percent"],
        noise_percent=percents["noise_percent"],
        redact=tuple(redact),
        compare=compare,
    )
    return policy, []


def shadow_to_dict(policy: ShadowPolicy, service: str) -> dict[str, Any]:
    """The policy in the table's format, only what differs from the defaults."""
    default = ShadowPolicy(Decimal(0), service)
    out: dict[str, Any] = {"percent": weight_number(policy.percent)}
    for key in ("candidate", "secondary", "sandbox", "timeout", "max_in_flight", "max_body_bytes"):
        if getattr(policy, key) != getattr(default, key):
            out[key] = getattr(policy, key)
    if policy.methods != default.methods:
        out["methods"] = list(policy.methods)
    if policy.record_percent:
        out["record_percent"] = weight_number(policy.record_percent)
    if policy.noise_percent != default.noise_percent:
        out["noise_percent"] = weight_number(policy.noise_percent)
    if policy.redact:
        out["redact"] = list(policy.redact)
    compare = compare_to_dict(policy.compare)
    if compare:
        out["compare"] = compare
    return out
