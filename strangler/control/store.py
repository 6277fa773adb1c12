"""What every route store offers: the current version, history, validated changes, rollback.

The file store and the PostgreSQL store implement this same interface and are tested
with the same tests.
"""

from __future__ import annotations

import abc
import getpass
import json
import random
import socket
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strangler.control.messages import Message, ValidationFailed
from strangler.control.model import RouteTable, state_for_weight, table_to_dict, weight_number
from strangler.control.validate import parse_table, parse_weight

FLIP_ATTEMPTS = 12  # re-reads of the newest table when other changes keep landing first
FLIP_BACKOFF = 0.01  # s, doubled after each conflict up to FLIP_BACKOFF_MAX, with jitter
FLIP_BACKOFF_MAX = 0.5


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
    """Parse a TOML or JSON table file; syntax errors, and nesting past the parsers' recursion
    limit (a RecursionError otherwise, for the CLI and the file store alike), are route.E000."""
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
    except (ValueError, tomllib.TOMLDecodeError, RecursionError) as error:
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

    def set_weight(
        self, route_id: str, weight: Any, who: str = "", why: str = "", seen: int | None = None
    ) -> Version:
        """Change one route's weight (its state follows: 0 monolith, 100 service, else canary).

        A flip edits one route of the newest table: changes to other routes that land
        between reading and writing are kept (the flip is re-applied on top of them), but
        a change to this same route since it was read refuses the flip (RouteChanged).
        With `seen`, the route was read in that version (the one a person decided on).
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

        def change(entry: dict[str, Any]) -> None:
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
            route_id, change, who, why or f"weight {route_id} -> {weight_number(parsed)}", seen
        )

    def set_shadow(
        self,
        route_id: str,
        percent: Any,
        who: str = "",
        why: str = "",
        seen: int | None = None,
        **policy: Any,
    ) -> Version:
        """Set the share of a route's requests shadowed (0 keeps the policy, shadowing none).

        `policy` sets other fields of the route's shadow table (candidate, secondary, ...);
        the whole table is validated as usual (route.E040-E048). Concurrency (and `seen`)
        as set_weight.
        """

        def change(entry: dict[str, Any]) -> None:
            shadow = dict(entry.get("shadow") or {})
            shadow.update(policy, percent=percent)
            entry["shadow"] = shadow

        return self._edit_route(
            route_id, change, who, why or f"shadow {route_id} -> {percent}%", seen
        )

    def set_state(
        self, route_id: str, state: str, who: str = "", why: str = "", seen: int | None = None
    ) -> Version:
        """Set a route's state; the weight follows (monolith 0, service and retired 100).

        Validated with the whole table like any change; concurrency (and `seen`) as
        set_weight.
        """

        def change(entry: dict[str, Any]) -> None:
            entry["state"] = state
            if state in ("service", "retired"):
                entry["weight"] = 100
            elif state == "monolith":
                entry["weight"] = 0

        return self._edit_route(route_id, change, who, why or f"state {route_id} -> {state}", seen)

    def _edit_route(
        self,
        route_id: str,
        change: Callable[[dict[str, Any]], None],
        who: str,
        why: str,
        seen: int | None = None,
    ) -> Version:
        """Apply `change` to one route of the newest table, on top of changes to other routes
        that land first; a change to this same route since it was read (now, or in version
        `seen`) refuses the edit (RouteChanged)."""
        base = self.current()
        if seen is not None:
            base = self._numbered(seen)
        as_read = _route_entry(base, route_id)
        who = who or default_actor()

        def edited(latest: Version) -> dict[str, Any]:
            if _route_entry(latest, route_id) != as_read:
                raise RouteChanged(
                    f"route {route_id} was changed by version {latest.number} ({latest.who}:"
                    f" {latest.why!r}) after this change read version {base.number}"
                )
            raw = json.loads(json.dumps(latest.raw))
            change(next(r for r in raw["routes"] if r["id"] == route_id))
            return raw

        return self._edit(edited, who, why)

    def _edit(self, edit: Callable[[Version], dict[str, Any]], who: str, why: str) -> Version:
        """Store `edit` of the newest table, re-applied on top of changes that land first
        (an edit that refuses is final). A store that can lock across the read and the write
        overrides this: optimistic retries can run out under many racing writers."""
        delay = FLIP_BACKOFF
        for _ in range(FLIP_ATTEMPTS - 1):
            latest = self.current()
            raw = edit(latest)
            try:
                return self.apply(raw, who, why, expect=latest.number)
            except ConcurrentChange:
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, FLIP_BACKOFF_MAX)
        latest = self.current()
        return self.apply(edit(latest), who, why, expect=latest.number)

    def rollback(
        self, number: int, who: str = "", why: str = "", expect: int | None = None
    ) -> Version:
        """Make version `number`'s table current again, as a new audited version; with
        `expect`, only while the table in force is still that version (ConcurrentChange)."""
        target = self._numbered(number)
        return self.apply(target.raw, who, why or f"rollback to version {number}", expect)

    def _numbered(self, number: int) -> Version:
        """Version `number`, or route.E023."""
        found = self.get(number)
        if found is None:
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
        return found


class StoreUnavailable(Exception):
    """The store cannot be reached (database down, wrong URL); the message says which."""


class ConcurrentChange(Exception):
    """Someone else changed the table between reading and writing; re-read and retry."""


class RouteChanged(ConcurrentChange):
    """A flip's route was changed by someone else since the flip read it; nothing changed."""


def _route_entry(version: Version, route_id: str) -> dict[str, Any]:
    """One route's entry in a version's table, or route.E022."""
    entry = next((r for r in version.raw["routes"] if r["id"] == route_id), None)
    if entry is None:
        raise ValidationFailed(
            [
                Message(
                    "route.E022", "routes", f"no route {route_id!r}", "see `strangler route list`"
                )
            ]
        )
    return entry
