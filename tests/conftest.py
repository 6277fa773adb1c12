"""Skips never pass silently, and `make check` runs the pure tests in seconds.

Under CI (CI=true) a skipped test fails unless SKIP_ALLOWANCES says this run cannot run it by
design. `pytest --fast` (what `make check` runs) skips the PostgreSQL, broker and slow tests,
each with a reason; under CI those skips fail too, so CI never runs the fast subset by mistake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

import pytest

FAST_SKIPPED_MARKERS = ("postgres", "kafka", "slow")


@dataclass(frozen=True)
class SkipAllowance:
    """A skip reason CI accepts, and the condition under which the skip is by design."""

    pattern: str  # a regular expression searched in the skip reason
    applies: Callable[[], bool]
    why: str


def database_is_postgres() -> bool:
    """True when the run uses the machine's PostgreSQL (DATABASE_URL), False on SQLite."""
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


SKIP_ALLOWANCES = (
    SkipAllowance(
        pattern=r"PostgreSQL",
        applies=lambda: not database_is_postgres(),
        why="`make test` runs the monolith and capture tests again on SQLite, where the "
        "PostgreSQL-only ones (row locks, session_replication_role) cannot run",
    ),
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def allowed_under_ci(reason: str, allowances: Iterable[SkipAllowance] = SKIP_ALLOWANCES) -> bool:
    """True when some allowance matches the reason and holds for this run."""
    return any(re.search(a.pattern, reason) and a.applies() for a in allowances)


def skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped report (pytest keeps it as (file, line, 'Skipped: reason'))."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"skip the tests marked {', '.join(FAST_SKIPPED_MARKERS)} (what `make check` runs)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    for item in items:
        marked = [name for name in FAST_SKIPPED_MARKERS if item.get_closest_marker(name)]
        if marked:
            reason = f"--fast (make check): marked {', '.join(marked)}; `make test` runs it"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if not allowed_under_ci(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true: {reason}\n"
            "this machine is expected to run it; install what it needs, or add a "
            "SkipAllowance in tests/conftest.py saying why this run cannot"
        )
