"""Two people, two browser tabs, one route: a change confirmed against a table that moved
since the page showed it is refused, never applied over the other one's change."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.helpers import DashboardProcess
from tests.dashboard.test_browser import WAIT_MS, browser, open_page, pytestmark, sign_in
from tests.proxy.helpers import strangler, table, write_json

__all__ = ["browser", "pytestmark"]  # the browser module's Chromium and its skip marks


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    seed = write_json(tmp_path / "seed.json", table("http://127.0.0.1:1", "http://127.0.0.1:2"))
    config = tmp_path / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    return config


@pytest.fixture
def tabs(browser: Browser, routes: Path) -> Iterator[tuple[Page, Page]]:
    """Alice's and Bob's tabs (each their own browser profile) on one dashboard."""
    runs = routes.parent / "runs.sqlite3"
    board = DashboardProcess(
        "--config", str(routes), "--proxy-admin", "http://127.0.0.1:1", "--runbook-store", str(runs)
    )
    people = [browser.new_context(), browser.new_context()]
    try:
        pages = []
        for person, name in zip(people, ("alice", "bob"), strict=True):
            page, _ = open_page(person, board.url)
            sign_in(page, name)
            pages.append(page)
        yield pages[0], pages[1]
    finally:
        for person in people:
            person.close()
        board.stop()


def weight(routes: Path) -> float:
    shown = strangler("route", "show", "products", "--config", str(routes))
    return float(json.loads(shown.stdout)["route"]["weight"])


def ask(page: Page, confirm: str) -> None:
    """Open the weight change's confirmation; check what it says moves."""
    card = page.locator("#route-products")
    card.locator(".weight-input").fill(confirm.split()[-1].rstrip("%"))
    card.locator(".weight-form button").click()
    expect(page.locator("#confirm")).to_contain_text(f"products goes {confirm}")


def confirm(page: Page, why: str) -> None:
    page.fill("#confirm-why", why)
    page.click("#confirm-ok")


def test_a_weight_confirmed_after_another_tab_moved_the_route_is_refused(
    tabs: tuple[Page, Page], routes: Path
) -> None:
    alice, bob = tabs
    ask(bob, "from 0% to 10%")  # Bob reads the confirmation...
    ask(alice, "from 0% to 30%")  # ...while Alice moves the route
    confirm(alice, "canary looks fine")
    expect(alice.locator("#notice")).to_contain_text("accepted", timeout=WAIT_MS)
    confirm(bob, "a small canary first")  # what he confirms is 0 -> 10, no longer true
    expect(bob.locator("#confirm-error")).to_contain_text(
        "route products was changed by version 2", timeout=WAIT_MS
    )
    assert weight(routes) == 30
    bob.click("#confirm-cancel")
    # The page shows the route as it is now once its next poll is drawn (a click before that
    # would ask 0 -> 10 again, and be refused again); then that one goes.
    expect(bob.locator("#route-products .weight")).to_contain_text("weight 30%", timeout=WAIT_MS)
    ask(bob, "from 30% to 10%")
    confirm(bob, "a small canary first")
    expect(bob.locator("#notice")).to_contain_text("accepted", timeout=WAIT_MS)
    assert weight(routes) == 10


def test_a_rollback_confirmed_after_another_tab_changed_the_table_is_refused(
    tabs: tuple[Page, Page], routes: Path
) -> None:
    alice, bob = tabs
    ask(alice, "from 0% to 20%")
    confirm(alice, "canary")
    expect(bob.locator("#history tr[data-version='1'] button.rollback")).to_be_visible(
        timeout=WAIT_MS
    )
    bob.locator("#history tr[data-version='1'] button.rollback").click()  # back to 0...
    ask(alice, "from 20% to 40%")  # ...while Alice goes on to 40
    confirm(alice, "still fine")
    expect(alice.locator("#notice")).to_contain_text("accepted", timeout=WAIT_MS)
    confirm(bob, "p99 up")  # would throw away Alice's 40 without Bob ever seeing it
    expect(bob.locator("#confirm-error")).to_contain_text("version 3", timeout=WAIT_MS)
    assert weight(routes) == 40


TWO_SIGN_OFFS = """
name = "two-sign-offs"

[[steps]]
id = "reverse-cdc"
title = "Reverse CDC deployed"
action = "approve"
gates = [{ gate = "approval" }]
interval = 0.2

[[steps]]
id = "flip-writes"
title = "Writes go to the service"
action = "approve"
gates = [{ gate = "approval" }]
interval = 0.2
"""


def test_an_approval_confirmed_after_the_run_moved_on_does_not_approve_the_next_step(
    tabs: tuple[Page, Page], routes: Path
) -> None:
    _, bob = tabs
    work = routes.parent
    (work / "two.toml").write_text(TWO_SIGN_OFFS)
    store = ("--store", str(work / "runs.sqlite3"))
    runner = subprocess.Popen(
        [sys.executable, "-m", "strangler", "runbook", "run", "two.toml", "--routes",
         str(routes), *store, "--why", "test"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        approve = bob.locator(".run button.run-approve")
        expect(approve).to_have_count(1, timeout=WAIT_MS)
        approve.click()  # Bob reads "Approving step reverse-cdc"...
        expect(bob.locator("#confirm")).to_contain_text("Approving step reverse-cdc")
        run_id = bob.locator(".run").get_attribute("id").removeprefix("run-")
        said = strangler("runbook", "approve", run_id, *store, "--who", "alice", "--why", "done")
        assert said.returncode == 0, said.stderr  # ...which Alice approves from the CLI
        wait_for(lambda: status(run_id, store)["step"] == "flip-writes")
        confirm(bob, "reverse CDC is healthy")  # what Bob approves is reverse-cdc, not this
        expect(bob.locator("#confirm-error")).to_contain_text(
            "step reverse-cdc of run", timeout=WAIT_MS
        )
        report = status(run_id, store)
        assert (report["state"], report["step"]) == ("running", "flip-writes")
        assert [d["step"] for d in report["decisions"] if d["kind"] == "approved"] == [
            "reverse-cdc"
        ]
    finally:
        runner.kill()
        runner.wait()


def status(run_id: str, store: tuple[str, ...]) -> dict:
    done = strangler("runbook", "status", run_id, *store, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        time.sleep(0.1)
