"""What every route store offers: the current version, history, validated changes, rollback.

The file store and the PostgreSQL store implement this same interface and are tested
with the same tests.
"""

from __future__ import annotations

import abc
import getpass
import json
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strangler.control.messages import Message, ValidationFailed
from strangler.control.model import RouteTable, state_for_weight, table_to_dict, weight_number
from strangler.control.validate import parse_table, parse_weight

FLIP_ATTEMPTS = 5  # re-reads of the newest table when other flips keep landing first


@dataclass(frozen=True)
class Version:
    """One accepted table and its audit record: who changed it, when, why, from what."""

    number: int
    table: RouteTable
    raw: dict[str, Any]
    who: str
    at: str
    why: str
    before: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        return {"version": self.number, "who": self.who, "at": self.at, "why": self.why}


def default_actor() -> str:
    """user@host, recorded in the audit log when the caller names no one."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_table_file(path: Path) -> Any:
    """Parse a TOML or JSON table file; syntax errors become route.E000 messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValidationFailed(
            [Message("route.E000", str(path), f"cannot read: {error}")]
        ) from error
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ValidationFailed(
            [
                Message(
                    "route.E000",
                    str(path),
                    f"syntax error: {error}",
                    "fix the file; the running table was not changed",
                )
            ]
        ) from error


def validated(raw: Any) -> tuple[RouteTable, dict[str, Any]]:
    """(table, normalized raw) or ValidationFailed with every message."""
    table, messages = parse_table(raw)
    if table is None:
        raise ValidationFailed(messages)
    return table, table_to_dict(table)


class RouteStore(abc.ABC):
    """A versioned, audited route table; every change is validated as a whole first."""

    @abc.abstractmethod
    def current(self) -> Version:
        """The table in force now."""

    @abc.abstractmethod
    def change_token(self) -> object:
        """A cheap value proxies poll; when it changes, they re-read `current()`."""

    def wait_for_change(self, timeout: float) -> bool | None:
        """Block up to `timeout` s for a change notice: True heard, False quiet.

        None means this store sends no notices (or cannot now), so the caller polls.
        """
        return None

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """True when no table was ever stored (so seeding it changes nothing anyone made)."""

    @abc.abstractmethod
    def history(self, limit: int = 50) -> list[Version]:
        """Accepted versions, newest first."""

    @abc.abstractmethod
    def get(self, number: int) -> Version | None:
        """One version by number."""

    @abc.abstractmethod
    def _commit(self, raw: dict[str, Any], who: str, why: str, expect: int | None) -> Version:
        """Store an already validated table as the next version."""

    def apply(self, raw: Any, who: str = "", why: str = "", expect: int | None = None) -> Version:
        """Validate and store a whole table; raises ValidationFailed and changes nothing."""
        _, normalized = validated(raw)
        return self._commit(normalized, who or default_actor(), why, expect)

    def set_weight(self, route_id: str, weight: Any, who: str = "", why: str = "") -> Version:
        """Change one route's weight (its state follows: 0 monolith, 100 service, else canary).

        A flip edits one field of the newest table, so when another change lands between
        reading and writing it is re-applied on top of that change instead of failing.
        """
        parsed = parse_weight(weight)
        if parsed is None:
            raise ValidationFailed(
                [
                    Message(
                        "route.E008",
                        f"routes ({route_id}).weight",
                        f"{weight!r} is not a weight",
                        "a number from 0 to 100 with at most two decimals",
                    )
                ]
            )

        def edit(entry: dict[str, Any]) -> None:
            if entry.get("state") == "retired" and parsed < 100:
                raise ValidationFailed(
                    [
                        Message(
                            "route.E013",
                            f"routes ({route_id}).state",
                            "a retired route has no monolith path to send traffic back to",
                            "set its state to service first with `strangler route set`",
                        )
                    ]
                )
            entry["weight"] = weight_number(parsed)
            entry["state"] = state_for_weight(parsed, entry.get("state", ""))

        return self._edit_route(
            route_id, edit, who, why or f"weight {route_id} -> {weight_number(parsed)}"
        )

    def set_shadow(
        self, route_id: str, percent: Any, who: str = "", why: str = "", **policy: Any
    ) -> Version:
        """Set the share of a route's requests shadowed (0 keeps the policy, shadowing none).

        `policy` sets other fields of the route's shadow table (candidate, secondary, ...);
        the whole table is validated as usual (route.E040-E047).
        """

        def edit(entry: dict[str, Any]) -> None:
            shadow = dict(entry.get("shadow") or {})
            shadow.update(policy, percent=percent)
            entry["shadow"] = shadow

        return self._edit_route(route_id, edit, who, why or f"shadow {route_id} -> {percent}%")

    def _edit_route(
        self, route_id: str, edit: Callable[[dict[str, Any]], None], who: str, why: str
    ) -> Version:
        """Apply `edit` to one route of the newest table; when another change lands between
        reading and writing, it is re-applied on top of that change (FLIP_ATTEMPTS times)."""
        for _ in range(FLIP_ATTEMPTS - 1):
            try:
                return self._edit_once(route_id, edit, who, why)
            except ConcurrentChange:
                continue
        return self._edit_once(route_id, edit, who, why)

    def _edit_once(
        self, route_id: str, edit: Callable[[dict[str, Any]], None], who: str, why: str
    ) -> Version:
        current = self.current()
        raw = json.loads(json.dumps(current.raw))
        entry = next((e for e in raw["routes"] if e["id"] == route_id), None)
        if entry is None:
            raise ValidationFailed(
                [Message("route.E022", "routes", f"no route {route_id!r}",
                         "see `strangler route list`")]
            )  # fmt: skip
        edit(entry)
        return self.apply(raw, who, why, expect=current.number)

    def rollback(self, number: int, who: str = "", why: str = "") -> Version:
        """Make version `number`'s table current again, as a new audited version."""
        target = self.get(number)
        if target is None:
            raise ValidationFailed(
                [
                    Message(
                        "route.E023",
                        "version",
                        f"no version {number}",
                        "see `strangler route history`",
                    )
                ]
            )
        return self.apply(target.raw, who, why or f"rollback to version {number}")


class StoreUnavailable(Exception):
    """The store cannot be reached (database down, wrong URL); the message says which."""


class ConcurrentChange(Exception):
    """Someone else changed the table between reading and writing; re-read and retry."""
