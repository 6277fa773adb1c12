"""The dashboard's only way to read and change routes: the route store of strangler.control.

The same validated, audited calls as `strangler route weight` and `strangler route
rollback`; the actor is the signed-in name with " via dashboard", the reason is required.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from strangler.control import RouteStore, Version

HISTORY_LIMIT = 20


@dataclass(frozen=True)
class TableView:
    """The table in force and its latest versions, newest first."""

    current: Version
    history: list[Version]


class ControlPath:
    """Reads cached until the store's change token moves; writes one at a time."""

    def __init__(self, store: RouteStore) -> None:
        self.store = store
        self._lock = threading.Lock()  # the PostgreSQL store holds one connection
        self._cached: tuple[object, TableView] | None = None

    def view(self) -> TableView:
        with self._lock:
            token = self.store.change_token()
            if self._cached is None or self._cached[0] != token:
                current = self.store.current()
                self._cached = (token, TableView(current, self.store.history(HISTORY_LIMIT)))
            return self._cached[1]

    def set_weight(self, route_id: str, weight: object, actor: str, why: str, seen: int) -> Version:
        """Raises ValidationFailed (nothing changed) like the CLI, and RouteChanged when the
        route changed after version `seen`, the one the page showed when its user decided."""
        with self._lock:
            return self.store.set_weight(route_id, weight, who(actor), why, seen)

    def rollback(self, number: int, actor: str, why: str, seen: int) -> Version:
        """ConcurrentChange when the table in force is no longer `seen` (the page's)."""
        with self._lock:
            return self.store.rollback(number, who(actor), why, expect=seen)


def who(actor: str) -> str:
    """The audit log's actor for a change made in the dashboard."""
    return f"{actor} via dashboard"
