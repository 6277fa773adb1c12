"""Problems found in a runbook definition, each with a stable id and its file:line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in a runbook file: where, what, and what to do (ids in docs/runbook.md)."""

    id: str
    where: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.id} {self.where}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "where": self.where, "message": self.message, "hint": self.hint}


class RunbookInvalid(Exception):
    """A runbook (or its parameters) was rejected; every problem is in `problems`."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
