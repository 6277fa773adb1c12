"""Two people, two browser tabs, one route: a change confirmed against a table that moved
since the page showed it is refused, never applied over the other one's change."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    board = DashboardProcess("--config", str(routes), "--proxy-admin", "http://127.0.0.1:1")
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
    ask(bob, "from 30% to 10%")  # the page shows the route as it is now: that one goes
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
