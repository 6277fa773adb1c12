"""Validation messages with stable ids (route.E0xx), Django-check style."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One problem in a route table: where it is, what is wrong, what to do."""

    id: str
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.id} {self.field}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "field": self.field, "message": self.message, "hint": self.hint}


class ValidationFailed(Exception):
    """A route table was rejected; every problem is in `messages` and nothing took effect."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        super().__init__("\n".join(str(m) for m in messages))
