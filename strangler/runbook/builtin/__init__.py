"""The runbooks shipped with the toolkit, as TOML data (`strangler runbook plan NAME`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from strangler.runbook.definition import Runbook, parse
from strangler.runbook.messages import Problem, RunbookInvalid


def names() -> list[str]:
    """Names of the built-in runbooks, sorted."""
    folder = resources.files(__package__)
    return sorted(Path(e.name).stem for e in folder.iterdir() if e.name.endswith(".toml"))


def text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def source(name_or_path: str) -> tuple[str, str]:
    """(TOML text, label for messages) of a built-in runbook by name, or of a file by path."""
    if name_or_path in names():
        return text(name_or_path), f"builtin:{name_or_path}"
    try:
        return Path(name_or_path).read_text(encoding="utf-8"), name_or_path
    except UnicodeDecodeError as error:
        raise RunbookInvalid(
            [Problem("runbook.E000", name_or_path, f"not UTF-8 text (byte {error.start})")]
        ) from error
    except OSError as error:
        raise RunbookInvalid(
            [
                Problem(
                    "runbook.E000",
                    name_or_path,
                    f"cannot read: {error.strerror}",
                    f"built-in runbooks are {', '.join(names())}",
                )
            ]
        ) from error


def resolve(name_or_path: str, params: dict[str, str] | None = None) -> Runbook:
    """A built-in runbook or a runbook file, validated (and bound when `params` is given)."""
    body, label = source(name_or_path)
    return parse(body, label, params)
