"""A source that stops answering: the page says its figures are old, never shows them as live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.conftest import CATALOG_SETTINGS, pg_url
from tests.dashboard.helpers import DashboardProcess
from tests.dashboard.test_browser import WAIT_MS, browser, open_page, pytestmark, sign_in
from tests.proxy.helpers import ROOT, strangler, table, write_json

__all__ = ["browser", "pg_url", "pytestmark"]  # the browser module's Chromium and its skip marks

# The catalog service's settings, except that importing them hangs while the flag file is
# there: `strangler cdc status` of the project then never answers (a database that hangs).
HANGING = f"""
import os, time
from {CATALOG_SETTINGS} import *  # noqa: F403
while os.path.exists(os.environ["HANG_FLAG"]):
    time.sleep(0.1)
"""


@pytest.fixture
def board(browser: Browser, catalog_db: str, tmp_path: Path) -> Iterator[tuple[Page, Path]]:
    """A signed-in page of a dashboard reading one project's CDC status; the hang flag."""
    seed = write_json(tmp_path / "seed.json", table("http://127.0.0.1:1", "http://127.0.0.1:2"))
    config = tmp_path / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    (tmp_path / "hanging_settings.py").write_text(HANGING)
    flag = tmp_path / "hang"
    env = {"CATALOG_DATABASE_URL": catalog_db, "HANG_FLAG": str(flag),
           "PYTHONPATH": f"{tmp_path}:{ROOT}"}  # fmt: skip
    dashboard = DashboardProcess(
        "--config", str(config), "--proxy-admin", "http://127.0.0.1:1",
        "--cdc-settings", "hanging_settings", env=env,
    )  # fmt: skip
    person = browser.new_context()
    try:
        page, _ = open_page(person, dashboard.url)
        sign_in(page)
        yield page, flag
    finally:
        flag.unlink(missing_ok=True)
        person.close()
        dashboard.stop()


def test_a_cdc_status_that_stops_answering_is_shown_old_not_live(
    board: tuple[Page, Path],
) -> None:
    page, flag = board
    cdc = page.locator("#cdc")
    pending = cdc.locator("tr", has_text="dead letters pending").locator("td")
    expect(pending).to_have_text("1", timeout=WAIT_MS)
    expect(cdc).not_to_contain_text("no newer reading")
    flag.touch()  # from now on the status command hangs (it is killed after 30 s)
    expect(cdc).to_contain_text("no newer reading", timeout=25_000)
    expect(cdc.locator(".stale")).to_contain_text("`strangler cdc status` has not answered")
    flag.unlink()
    expect(cdc).not_to_contain_text("no newer reading", timeout=45_000)


@pytest.fixture
def parity_board(browser: Browser, pg_url: str, tmp_path: Path) -> Iterator[Page]:
    """A signed-in page of a dashboard reading a parity store on PostgreSQL."""
    seed = write_json(tmp_path / "seed.json", table("http://127.0.0.1:1", "http://127.0.0.1:2"))
    config = tmp_path / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    dashboard = DashboardProcess(
        "--config", str(config), "--proxy-admin", "http://127.0.0.1:1",
        "--parity-store", pg_url,
    )  # fmt: skip
    person = browser.new_context()
    try:
        page, _ = open_page(person, dashboard.url)
        sign_in(page)
        yield page
    finally:
        person.close()
        dashboard.stop()


@pytest.mark.postgres
def test_a_parity_store_that_stops_answering_is_shown_old_not_live(
    parity_board: Page, pg_url: str
) -> None:
    parity = parity_board.locator("#parity")
    expect(parity).to_contain_text("products", timeout=WAIT_MS)
    expect(parity).not_to_contain_text("no newer reading")
    with psycopg.connect(pg_url) as hold:  # a transaction holding the table: reads wait
        hold.execute("LOCK TABLE parity_windows IN ACCESS EXCLUSIVE MODE")
        expect(parity).to_contain_text("no newer reading", timeout=25_000)
        expect(parity.locator(".stale")).to_contain_text("the parity store has not answered")
        expect(parity).to_contain_text("products")  # the old figures, said to be old
    expect(parity).not_to_contain_text("no newer reading", timeout=20_000)
