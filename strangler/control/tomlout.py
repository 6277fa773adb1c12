"""Write a route table back as TOML (the standard library only reads TOML)."""

from __future__ import annotations

import json
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _scalars(table: dict[str, Any]) -> list[str]:
    return [
        f"{_key(k)} = {_value(v)}"
        for k, v in table.items()
        if not isinstance(v, dict) or k == "override"
    ]


def _subtables(path: str, table: dict[str, Any]) -> list[str]:
    """Nested tables (a route's `shadow` and its `compare`) as [path.key] sections."""
    lines: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict) and key != "override":
            name = f"{path}.{_key(key)}"
            lines += [f"[{name}]", *_scalars(value), *_subtables(name, value)]
    return lines


def dumps(raw: dict[str, Any]) -> str:
    """TOML text for a normalized route table (the shape `table_to_dict` returns)."""
    lines = [
        "# Route table managed by `strangler route`; changes are versioned and audited.",
        f"default_backend = {_value(raw['default_backend'])}",
        "",
    ]
    lines += ["[settings]", *_scalars(raw.get("settings", {})), ""]
    for name, backend in raw.get("backends", {}).items():
        lines += [f"[backends.{_key(name)}]", *_scalars(backend), ""]
    for route in raw.get("routes", []):
        lines += ["[[routes]]", *_scalars(route), *_subtables("routes", route), ""]
    return "\n".join(lines)
