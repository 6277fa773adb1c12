"""What every watched source's reading shares: when it was taken, and when that is too old."""

from __future__ import annotations

from typing import ClassVar


class Dated:
    """A reading taken at `at` (unix s, 0 = not yet) that is stale once no newer one came
    for `STALE_AFTER_S`: the last rounds did not finish (a source that hangs), so the page
    shows its figures as old, not as the live state."""

    at: float
    STALE_AFTER_S: ClassVar[float]

    def stale(self, now: float) -> bool:
        return bool(self.at) and now - self.at > self.STALE_AFTER_S
