"""What each version of the route table changed, in words, with the override secrets hidden."""

from __future__ import annotations

import copy
from typing import Any

HIDDEN = "(hidden)"


def redact(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A table with every route's override secret replaced, fit to show in a page."""
    if raw is None:
        return None
    shown = copy.deepcopy(raw)
    for route in shown.get("routes", []):
        if isinstance(route.get("override"), dict) and "secret" in route["override"]:
            route["override"]["secret"] = HIDDEN
    return shown


def _fields(prefix: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key == "override":
            changes.append(f"{prefix}override changed")
        elif key not in before:
            changes.append(f"{prefix}{key} set to {new}")
        elif key not in after:
            changes.append(f"{prefix}{key} removed (was {old})")
        else:
            changes.append(f"{prefix}{key} {old} -> {new}")
    return changes


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """One line per changed field: 'products: weight 0 -> 25', 'route orders added', ..."""
    if before is None:
        return ["first table"]
    lines = _fields("", _top(before), _top(after))
    for section in ("settings", "backends"):
        old, new = before.get(section, {}), after.get(section, {})
        if section == "settings":
            lines += _fields("settings.", old, new)
            continue
        lines += [f"backend {name} added" for name in new.keys() - old.keys()]
        lines += [f"backend {name} removed" for name in old.keys() - new.keys()]
        for name in sorted(old.keys() & new.keys()):
            lines += _fields(f"backend {name}: ", old[name], new[name])
    old_routes = {r["id"]: r for r in before.get("routes", [])}
    new_routes = {r["id"]: r for r in after.get("routes", [])}
    lines += [f"route {rid} added" for rid in new_routes if rid not in old_routes]
    lines += [f"route {rid} removed" for rid in old_routes if rid not in new_routes]
    for rid in (r for r in new_routes if r in old_routes):
        lines += _fields(f"{rid}: ", old_routes[rid], new_routes[rid])
    kept = [rid for rid in old_routes if rid in new_routes]
    if kept != [rid for rid in new_routes if rid in old_routes]:
        lines.append("routes reordered")
    return lines or ["no change (same table stored again)"]


def _top(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in ("settings", "backends", "routes")}
