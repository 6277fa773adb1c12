"""The runbooks shipped with the toolkit, as TOML data (`strangler runbook plan NAME`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from strangler.runbook.definition import Runbook, parse


def names() -> list[str]:
    """Names of the built-in runbooks, sorted."""
    folder = resources.files(__package__)
    return sorted(Path(e.name).stem for e in folder.iterdir() if e.name.endswith(".toml"))


def text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def resolve(name_or_path: str, params: dict[str, str] | None = None) -> Runbook:
    """A built-in runbook by name, or a runbook file by path; validated (and bound)."""
    if name_or_path in names():
        return parse(text(name_or_path), f"builtin:{name_or_path}", params)
    from strangler.runbook.definition import load

    return load(Path(name_or_path), params)
