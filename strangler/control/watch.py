"""Follow a store from a background thread and hand each new valid version to a callback.

Polling a cheap change token every 250 ms keeps a flip's reach under one second for both
stores; an invalid table never reaches the callback, so the running one keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from strangler.control.messages import Message, ValidationFailed
from strangler.control.store import RouteStore, Version

log = logging.getLogger("strangler.control")


class StoreWatcher:
    """Calls `on_version` with each newly accepted version, `on_rejected` with bad tables."""

    def __init__(
        self,
        store: RouteStore,
        on_version: Callable[[Version], None],
        on_rejected: Callable[[list[Message]], None] | None = None,
        interval: float = 0.25,
    ) -> None:
        self.store = store
        self.on_version = on_version
        self.on_rejected = on_rejected or (lambda messages: None)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="route-watcher", daemon=True)
        self._token: object = None
        self._number = -1

    def load(self) -> Version:
        """Read the current version once (raises if the store has none that is valid)."""
        self._token = self.store.change_token()
        version = self.store.current()
        self._number = version.number
        return version

    def start(self) -> None:
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
            self.on_rejected(rejected.messages)
            return
        self._number = version.number
        self.on_version(version)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # a store outage must not kill the watcher; retry next tick
                log.exception("route store poll failed; still serving version %s", self._number)
                self._token = None
