"""Follow a store from a background thread and hand each new valid version to a callback.

A store that announces changes (PostgreSQL: LISTEN/NOTIFY) is checked when it does, and
once a second besides; otherwise (the file store, or while notices are unavailable) a
cheap change token is polled every 250 ms. Either way a flip's reach stays under one
second; an invalid table never reaches the callback, so the running one keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from strangler.control.messages import Message, ValidationFailed
from strangler.control.store import RouteStore, Version

log = logging.getLogger("strangler.control")
RECHECK_SECONDS = 1.0  # with notices: a safety-net check, in case one was ever missed


class StoreWatcher:
    """Follows a store; `start` hands each new valid version to a callback, bad ones to another."""

    def __init__(
        self, store: RouteStore, interval: float = 0.25, recheck: float = RECHECK_SECONDS
    ) -> None:
        self.store = store
        self.interval = interval
        self.recheck = recheck
        self.listening = False  # notices are arriving (for logs and tests)
        self._last_check = time.monotonic()
        self.on_version: Callable[[Version], object] = lambda version: None
        self.on_rejected: Callable[[list[Message]], object] = lambda messages: None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="route-watcher", daemon=True)
        self._token: object = None
        self._number = -1
        # Same number, other table: only a hand edit a read-only reader could not record.
        self._raw: dict[str, Any] = {}
        # Why the store's newest table is not the one in force ("" when it is): the file
        # cannot be read, is invalid, or the store cannot be reached. /healthz reports it.
        self.problem = ""

    def load(self) -> Version:
        """Read the current version once (raises if the store has none that is valid)."""
        self._token = self.store.change_token()  # before reading: a change in between is seen
        version = self.store.current()
        self._number, self._raw = version.number, version.raw
        return version

    def start(
        self,
        on_version: Callable[[Version], object],
        on_rejected: Callable[[list[Message]], object] | None = None,
    ) -> None:
        """Follow from a daemon thread; the callbacks run in that thread."""
        self.on_version = on_version
        if on_rejected is not None:
            self.on_rejected = on_rejected
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> None:
        """One poll: reload when the token moved; report but never apply an invalid table."""
        token = self.store.change_token()
        if token == self._token:
            return
        self._token = token
        try:
            version = self.store.current()
        except ValidationFailed as rejected:
            log.error("route table rejected, still serving version %s:\n%s", self._number, rejected)
            self.problem = "; ".join(str(m) for m in rejected.messages)
            self.on_rejected(rejected.messages)
            return
        self.problem = ""
        if version.number < self._number:  # never step back to an older table
            log.warning(
                "store reported version %s after %s; keeping %s",
                version.number,
                self._number,
                self._number,
            )
            return
        if version.number == self._number and version.raw == self._raw:
            return  # the same version read again (a touched file, a recheck)
        self._raw = version.raw
        self._number = version.number
        self.on_version(version)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._wait():
                continue
            self._last_check = time.monotonic()
            try:
                self.check()
            except Exception as error:  # a store outage must not kill the watcher; retry
                log.exception("route store poll failed; still serving version %s", self._number)
                self.problem = f"route store unreachable: {error}".strip()
                self._token = None

    def _wait(self) -> bool:
        """Wait one interval; True when the store should be checked now."""
        heard = self.store.wait_for_change(self.interval)
        if heard is None:
            if self.listening:
                log.warning("route change notices lost; polling every %s s", self.interval)
            self.listening = False
            return not self._stop.wait(self.interval)
        if not self.listening:
            log.info("listening for route changes")
        self.listening = True
        return heard or time.monotonic() - self._last_check >= self.recheck
