"""A circuit breaker per backend: opens on consecutive failures or a high error rate.

Time is passed in, so the state machine is a pure object tested without sleeping.
closed -> open (after `failures` in a row, or error rate >= `error_rate` over the last
`window` requests) -> half_open after `cooldown` s, when one health probe (GET the
backend's health_path) is sent -> closed if the probe succeeds, open again if it fails.
No user request is used as the probe: while the breaker is not closed, requests that can
fall back go to the monolith.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

BreakerState = Literal["closed", "half_open", "open"]
STATES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}  # the metric's values


class CircuitBreaker:
    """Decides whether a backend may be tried now, and when to probe it."""

    def __init__(
        self, failures: int = 5, error_rate: float = 0.5, window: int = 20, cooldown: float = 5.0
    ) -> None:
        self.state: BreakerState = "closed"
        self.consecutive = 0
        self.opened_at = 0.0
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.errors = 0  # failures among `outcomes`, kept as they come and go
        self.configure(failures, error_rate, window, cooldown)

    def configure(self, failures: int, error_rate: float, window: int, cooldown: float) -> None:
        """Apply new thresholds from a reloaded table without forgetting the current state."""
        self.failures, self.error_rate, self.cooldown = failures, error_rate, cooldown
        self.window = window
        if self.outcomes.maxlen != window:
            self.outcomes = deque(self.outcomes, maxlen=window)
            self.errors = self.outcomes.count(False)

    def allow(self, now: float) -> bool:
        """True when requests may go to the backend."""
        return self.state == "closed"

    def probe_due(self, now: float) -> bool:
        """True once per cooldown: the caller should probe the backend's health now."""
        if self.state == "open" and now - self.opened_at >= self.cooldown:
            self.state = "half_open"
            return True
        return False

    def probe_result(self, ok: bool, now: float) -> None:
        """The health probe's outcome: close the breaker, or open it for another cooldown."""
        if self.state != "half_open":
            return
        if ok:
            self.state = "closed"
            self._reset()
        else:
            self._open(now)

    def record(self, ok: bool, now: float) -> None:
        """Feed one request's outcome; may open the breaker. Ignored unless closed."""
        if self.state != "closed":
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
        self.state, self.opened_at = "open", now
        self._reset()

    def _reset(self) -> None:
        self.outcomes.clear()
        self.errors = self.consecutive = 0
