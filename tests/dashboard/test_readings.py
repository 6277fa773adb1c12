"""Every watched source says when its reading is old: the page never shows it as live."""

from __future__ import annotations

from functools import partial

import pytest

from strangler.dashboard import cdc, parity, runbooks


@pytest.mark.parametrize(
    ("reading", "after"),
    [
        (runbooks.RunsReading, runbooks.STALE_AFTER_S),
        (parity.ParityReading, parity.STALE_AFTER_S),
        (partial(cdc.CdcReading, "monolith.settings"), cdc.STALE_AFTER_S),
    ],
)
def test_a_reading_not_renewed_for_a_few_rounds_is_stale(reading, after) -> None:
    assert not reading(at=1000.0).stale(1000.0 + after)
    assert reading(at=1000.0).stale(1000.0 + after + 0.5)
    assert not reading().stale(10.0**10)  # never read yet: "reading...", not old
