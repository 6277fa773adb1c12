"""A circuit breaker per backend: opens on consecutive failures or a high error rate.

Time is passed in, so the state machine is a pure object tested without sleeping.
closed -> open (after `failures` in a row, or error rate >= `error_rate` over the last
`window` requests) -> half_open after `cooldown` s (one probe allowed) -> closed on the
probe's success, open again on its failure.
"""

from __future__ import annotations

from collections import deque

STATES = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Decides whether a backend may be tried now."""

    def __init__(
        self, failures: int = 5, error_rate: float = 0.5, window: int = 20, cooldown: float = 5.0
    ) -> None:
        self.configure(failures, error_rate, window, cooldown)
        self.state = "closed"
        self.consecutive = 0
        self.opened_at = 0.0
        self.probing = False
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.errors = 0  # failures among `outcomes`, kept as they come and go

    def configure(self, failures: int, error_rate: float, window: int, cooldown: float) -> None:
        """Apply new thresholds from a reloaded table without forgetting the current state."""
        self.failures, self.error_rate, self.cooldown = failures, error_rate, cooldown
        self.window = window
        if getattr(self, "outcomes", None) is not None and self.outcomes.maxlen != window:
            self.outcomes = deque(self.outcomes, maxlen=window)
            self.errors = self.outcomes.count(False)

    def allow(self, now: float) -> bool:
        """True when a request may go to the backend (in half-open: only the one probe)."""
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.cooldown:
            self.state = "half_open"
            self.probing = False
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def record(self, ok: bool, now: float) -> None:
        """Feed one outcome; may open or close the breaker."""
        if self.state == "half_open":
            if ok:
                self.state, self.consecutive, self.probing = "closed", 0, False
                self.outcomes.clear()
                self.errors = 0
            else:
                self._open(now)
            return
        if self.state == "open":
            return  # late answers from before the breaker opened change nothing
        if len(self.outcomes) == self.window and not self.outcomes[0]:
            self.errors -= 1  # the oldest outcome leaves the window
        self.outcomes.append(ok)
        if ok:
            self.consecutive = 0
        else:
            self.consecutive += 1
            self.errors += 1
        if self.consecutive >= self.failures or (
            len(self.outcomes) == self.window and self.errors / self.window >= self.error_rate
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self.state, self.opened_at, self.probing = "open", now, False
        self.outcomes.clear()
        self.errors = self.consecutive = 0
