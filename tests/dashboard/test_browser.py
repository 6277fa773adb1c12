"""The dashboard in Debian's Chromium (Playwright) against real proxies, upstreams and CLI.

Screenshots of the main views are written to build/dashboard-screenshots/ (see SCREENSHOTS).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from strangler import parity
from tests.dashboard.conftest import CATALOG_SETTINGS
from tests.dashboard.helpers import SCREENSHOTS, TOKEN, DashboardProcess, Stack, start_stack
from tests.parity.conftest import shop_traffic
from tests.proxy.helpers import ROOT, backends_for, strangler

CHROMIUM = Path("/usr/bin/chromium")
REPORT = (
    "<!doctype html><title>contexts</title><h1>Context map</h1><script>document.title='ok'</script>"
)
WAIT_MS = 10_000  # bound on how long the page may take to show a change (it polls every 1 s)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make system-deps)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("dashboard"), weight=30)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def dashboard(stack: Stack, catalog_db: str) -> Iterator[DashboardProcess]:
    admins = [arg for p in stack.proxies for arg in ("--proxy-admin", p.admin_url)]
    work = stack.config.parent
    (work / "reconcile.json").write_text(
        json.dumps({"drifted": 2, "tables": [{"table": "catalog_product", "drifted": 2}]})
    )
    (work / "report.html").write_text(REPORT)
    process = DashboardProcess(
        "--config", str(stack.config), *admins,
        "--cdc-settings", CATALOG_SETTINGS,
        "--reconcile-report", str(work / "reconcile.json"),
        "--report", str(work / "report.html"),
        "--runbook-store", str(work / "runs.sqlite3"),
        "--parity-store", str(work / "parity.sqlite3"),
        env={"CATALOG_DATABASE_URL": catalog_db},
    )  # fmt: skip
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root in a container, where Chromium refuses it.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    yield ctx
    ctx.close()


def open_page(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    """A page with every console error and uncaught exception collected."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


def sign_in(page: Page, name: str = "tester") -> None:
    page.fill("#token", TOKEN)
    page.fill("#name", name)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#board")).to_be_visible(timeout=WAIT_MS)


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_traffic_through_both_replicas_shows_in_the_live_split(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page)
    seen = backends_for(stack.proxies[0].url, [f"user-{i}" for i in range(300)])
    seen |= backends_for(stack.proxies[1].url, [f"user-{i}" for i in range(300, 600)])
    on_catalog = sum(1 for b in seen.values() if b == "catalog")
    share = on_catalog / len(seen) * 100
    card = page.locator("#route-products")
    expect(card.locator(".split-text")).to_contain_text(f"catalog {share:.1f}%", timeout=WAIT_MS)
    # Both replicas summed: each one alone answered 300 of the 600.
    expect(card.locator(".backend-0 td").nth(3)).to_have_text(str(600 - on_catalog))
    expect(card.locator(".backend-1 td").nth(3)).to_have_text(str(on_catalog))
    expect(card.locator(".state")).to_have_text("canary")
    cdc = page.locator("#cdc")
    pending = cdc.locator("tr", has_text="dead letters pending")
    expect(pending.locator("td")).to_have_text("1", timeout=WAIT_MS)
    expect(cdc.locator("tr", has_text="keys parked").locator("td")).to_have_text("1")
    expect(cdc).to_contain_text(f"strangler cdc --settings {CATALOG_SETTINGS} dead-letters list")
    cdc.locator("button.show-parked").click()
    parked = page.locator("#parked tr").nth(1).locator("td")
    expect(parked).to_have_text(["catalog_product", "42", "5", "boom"] + [re.compile(".")] * 2)
    expect(cdc).to_contain_text("2 rows drifted (catalog_product 2)")
    expect(card.locator("svg.chart")).to_have_count(3)
    shot(page, "dashboard-1366x768")
    page.set_viewport_size({"width": 1920, "height": 1080})
    shot(page, "dashboard-1920x1080")
    assert errors == []


def test_changing_a_weight_in_the_page_changes_the_table_and_the_history(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page, "alice")
    card = page.locator("#route-products")
    card.locator(".weight-input").fill("45")
    card.locator(".weight-form button").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text("This moves traffic: products goes from 30% to 45%")
    shot(page, "dashboard-confirm")
    page.click("#confirm-ok")  # without a reason: refused in the page, nothing sent
    expect(page.locator("#confirm-error")).to_contain_text("Say why")
    assert stack.route()["weight"] == 30
    page.fill("#confirm-why", "canary error rate flat for an hour")
    page.click("#confirm-ok")
    expect(page.locator("#notice")).to_contain_text("accepted", timeout=WAIT_MS)
    route = stack.route()
    assert (route["weight"], route["state"]) == (45, "canary")
    newest = stack.history()[0]
    assert (newest["who"], newest["why"]) == (
        "alice via dashboard",
        "canary error rate flat for an hour",
    )
    before, after = newest["before"], newest["after"]
    assert after["routes"][0].pop("weight") == 45 and before["routes"][0].pop("weight") == 30
    assert after == before  # nothing else in the table moved
    row = page.locator("#history tbody tr").first
    expect(row).to_contain_text("canary error rate flat for an hour", timeout=WAIT_MS)
    expect(row.locator("td").nth(4).locator("div").first).to_have_text("products: weight 30 -> 45")
    expect(card.locator(".weight")).to_contain_text("weight 45%")
    stack.proxies[0].wait_for_version(newest["version"])
    stack.proxies[1].wait_for_version(newest["version"])
    total = card.locator(".backend-1 td").nth(3)
    before_burst = total.inner_text()
    backends_for(stack.proxies[0].url, [f"user-{i}" for i in range(600, 900)])
    expect(total).not_to_have_text(before_burst, timeout=WAIT_MS)
    shot(page, "dashboard-after-flip")
    assert errors == []


def test_rolling_back_from_the_page_restores_the_version(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page, "bob")
    page.locator("#history tr[data-version='1'] button.rollback").click()
    expect(page.locator("#confirm")).to_contain_text("version 1")
    page.fill("#confirm-why", "service p99 regressed")
    page.click("#confirm-ok")
    expect(page.locator("#notice")).to_contain_text("accepted", timeout=WAIT_MS)
    assert stack.route()["weight"] == 30
    newest = stack.history()[0]
    assert (newest["who"], newest["why"]) == ("bob via dashboard", "service p99 regressed")
    assert newest["after"] == stack.history()[-1]["after"]  # exactly version 1's table
    for proxy in stack.proxies:
        proxy.wait_for_version(newest["version"])
    expect(page.locator("#history tbody tr").first).to_contain_text("service p99 regressed")
    assert errors == []


GATE_RUNBOOK = """
name = "dashboard-gate"
title = "A gate that fails on purpose"

[params.route]
type = "string"

[[steps]]
id = "all-on-monolith"
title = "Check that the service serves none of the route"
action = "check"
gates = [{ gate = "traffic_on_monolith", route = "{route}", min_requests = 10 }]
bake = 0
deadline = 4
interval = 1
on_fail = "pause"
"""
APPROVE_RUNBOOK = """
name = "dashboard-approve"
title = "Wait for a person"

[[steps]]
id = "sign-off"
title = "A person signs off"
action = "approve"
gates = [{ gate = "approval" }]
deadline = 120
interval = 0.5
"""


def start_run(stack: Stack, text: str, *args: str) -> subprocess.Popen[str]:
    """`strangler runbook run` on the stack's route table and proxies, as a real process."""
    work = stack.config.parent
    definition = work / f"runbook-{abs(hash(text))}.toml"
    definition.write_text(text)
    metrics = [arg for p in stack.proxies for arg in ("--metrics", f"{p.admin_url}/metrics")]
    store = str(work / "runs.sqlite3")
    argv = ["runbook", "run", str(definition), *args, "--routes", str(stack.config), *metrics,
            "--store", store, "--who", "runner", "--why", "dashboard test"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "strangler", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def run_status(stack: Stack) -> dict:
    """The newest run, as `strangler runbook status --json` reports it."""
    store = str(stack.config.parent / "runs.sqlite3")
    listed = strangler("runbook", "history", "--store", store, "--json")
    assert listed.returncode == 0, listed.stderr
    newest = json.loads(listed.stdout)["runs"][0]["id"]
    done = strangler("runbook", "status", newest, "--store", store, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_failed_runbook_gate_shows_its_readings_and_the_run_is_aborted_from_the_page(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page, "dana")
    runner = start_run(stack, GATE_RUNBOOK, "-p", "route=products")
    try:
        batch = 0
        while runner.poll() is None and batch < 200:  # traffic while the gate watches
            backends_for(stack.proxies[batch % 2].url, [f"rb-{batch}-{i}" for i in range(20)])
            batch += 1
            time.sleep(0.2)
        assert runner.wait(timeout=60) == 1, runner.stdout.read() if runner.stdout else ""
    finally:
        if runner.poll() is None:
            runner.kill()
    report = run_status(stack)
    assert report["state"] == "paused"
    gate = report["steps"][0]["gates"][0]
    assert (gate["gate"], gate["outcome"]) == ("traffic_on_monolith", "fail")
    run = page.locator(f"#run-{report['id']}")
    expect(run.locator(".state")).to_have_text("paused", timeout=WAIT_MS)
    row = run.locator("tr.gate")
    expect(row.locator(".outcome")).to_have_text("fail")
    expect(row.locator(".reason")).to_have_text(gate["reason"])
    samples = ", ".join(f"{k} {v}" for k, v in gate["samples"].items())
    expect(row.locator("td").nth(4)).to_have_text(samples)
    row.locator("summary").click()
    expect(row.locator("pre")).to_contain_text('"service"')
    shot(page, "dashboard-runbook-failed-gate")
    run.locator("button.run-abort").click()
    expect(page.locator("#confirm")).to_contain_text("stops run")
    page.fill("#confirm-why", "canary plan changed")
    page.click("#confirm-ok")
    expect(run.locator(".state")).to_have_text("aborted", timeout=WAIT_MS)
    aborted = run_status(stack)
    decision = next(d for d in aborted["decisions"] if d["kind"] == "aborted")
    assert (decision["who"], decision["why"]) == ("dana via dashboard", "canary plan changed")
    assert errors == []


def test_approving_a_step_from_the_page_lets_the_run_finish(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page, "erin")
    runner = start_run(stack, APPROVE_RUNBOOK)
    try:
        approve = page.locator(".run button.run-approve")
        expect(approve).to_have_count(1, timeout=WAIT_MS)
        approve.click()
        expect(page.locator("#confirm")).to_contain_text("sign-off")
        page.fill("#confirm-why", "reverse CDC checked by hand")
        page.click("#confirm-ok")
        assert runner.wait(timeout=60) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    report = run_status(stack)
    assert report["state"] == "done"
    expect(page.locator(f"#run-{report['id']} .state")).to_have_text("done", timeout=WAIT_MS)
    approved = next(d for d in report["decisions"] if d["kind"] == "approved")
    assert (approved["who"], approved["why"]) == (
        "erin via dashboard",
        "reverse CDC checked by hand",
    )
    assert errors == []


def test_parity_per_endpoint_and_an_example_pair_side_by_side(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    store = parity.open_store(str(stack.config.parent / "parity.sqlite3"))
    comparer = parity.Comparer()
    traffic = shop_traffic(300, price_bug=0.3, at=time.time() - 60)
    parity.record(store, (comparer.compare(exchange) for exchange in traffic))
    expected = parity.summary(store, "products", since=time.time() - 3600)
    store.close()
    page, errors = open_page(context, dashboard.url)
    sign_in(page)
    card = page.locator("#parity-products")
    expect(card).to_contain_text("300 samples", timeout=WAIT_MS)
    expect(card.locator("h3")).to_contain_text(f"parity {expected.parity:.2f}%")
    row = card.locator("tr[data-endpoint='GET /api/v1/products']")
    expect(row.locator("td").nth(1)).to_have_text("300")
    expect(row.locator("td").nth(4)).to_have_text("200/200: 300")
    price = row.locator("button.field.regression", has_text="results[*].price")
    expect(price).to_have_count(1)
    expect(row.locator("button.field.noise", has_text="request_id")).to_have_count(1)
    price.click()
    example = page.locator("#example")
    expect(example).to_contain_text("results[*].price")
    sides = example.locator(".side pre")
    expect(sides).to_have_count(2)
    assert sides.nth(0).inner_text() != sides.nth(1).inner_text()
    expect(sides.nth(1)).to_contain_text(".99")
    shot(page, "dashboard-parity-example")
    backends_for(stack.proxies[0].url, [f"tour-{i}" for i in range(400)])
    expect(page.locator("#route-products .split-text")).to_contain_text("req/s", timeout=WAIT_MS)
    shot(page, "dashboard-overview")  # the README's picture: docs/img/dashboard.png
    assert errors == []


def test_without_the_token_nothing_changes_and_the_page_says_why(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    before = stack.route()
    page, _ = open_page(context, dashboard.url)
    expect(page.locator("#sign-in")).to_contain_text("Nothing can be read or changed without")
    expect(page.locator("#board")).to_be_hidden()
    page.fill("#token", "not-the-token")
    page.fill("#name", "mallory")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("wrong admin token")
    expect(page.locator("#board")).to_be_hidden()
    answer = context.request.post(
        f"{dashboard.url}/api/routes/products/weight",
        data={"weight": 100, "why": "no token"},
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 401
    assert "admin token" in answer.json()["error"]
    assert stack.route() == before
    shot(page, "dashboard-signed-out")


def test_the_page_survives_a_proxy_killed_and_restarted(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page)
    unmatched = page.locator("#unmatched")
    backends_for(stack.proxies[1].url, [f"u{i}" for i in range(100)], path="/other/1")
    expect(unmatched).to_contain_text("100 in 60 s", timeout=WAIT_MS)
    stack.proxies[1].proc.kill()  # -9: no goodbye
    stack.proxies[1].stop()
    expect(page.locator("#banner")).to_contain_text("not answering", timeout=WAIT_MS)
    expect(page.locator(".replica.down")).to_have_count(1)
    restarted = stack.start_proxy(1)
    expect(page.locator(".replica.down")).to_have_count(0, timeout=WAIT_MS)
    # The restarted proxy counts from zero again: 30 more, not a negative step.
    backends_for(restarted.url, [f"v{i}" for i in range(30)], path="/other/1")
    expect(unmatched).to_contain_text("130 in 60 s", timeout=WAIT_MS)
    expect(page.locator("#banner")).to_be_hidden()
    assert errors == []


def test_a_route_file_broken_by_hand_shows_on_every_replica_and_in_the_table(
    stack: Stack, dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page)
    expect(page.locator(".replica.up")).to_have_count(2, timeout=WAIT_MS)
    good = stack.config.read_text()
    try:
        stack.config.write_text(good[: len(good) // 2])  # a hand edit saved half-way
        expect(page.locator(".replica.stale")).to_have_count(2, timeout=WAIT_MS)
        expect(page.locator("#banner")).to_contain_text("cannot read the route store")
        expect(page.locator("#routes")).to_contain_text("cannot read the route table")
    finally:
        stack.config.write_text(good)
    expect(page.locator(".replica.up")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#route-products")).to_be_visible()
    assert errors == []


def test_the_analyzer_report_opens_one_click_away(
    dashboard: DashboardProcess, context: BrowserContext
) -> None:
    page, errors = open_page(context, dashboard.url)
    sign_in(page)
    with context.expect_page() as opened:
        page.click("#report a")
    report = opened.value
    expect(report.locator("h1")).to_have_text("Context map")
    expect(report).to_have_title("ok")  # its own inline script runs (sandboxed)
    assert errors == []


def test_a_fresh_install_says_what_to_do_in_every_panel(browser: Browser, tmp_path: Path) -> None:
    empty = {"default_backend": "monolith", "backends": {"monolith": {"url": "http://127.0.0.1:1"}}}
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(empty | {"routes": []}))
    config = tmp_path / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    process = DashboardProcess("--config", str(config), "--proxy-admin", "http://127.0.0.1:1")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page, errors = open_page(context, process.url)
        sign_in(page)
        expect(page.locator("#routes")).to_contain_text("No routes yet", timeout=WAIT_MS)
        expect(page.locator("#banner")).to_contain_text("not answering")
        expect(page.locator("#parity")).to_contain_text("--parity-store")
        expect(page.locator("#runbooks")).to_contain_text("--runbook-store")
        expect(page.locator("#cdc")).to_contain_text("--cdc-settings")
        expect(page.locator("#report")).to_contain_text("strangler analyze")
        page.wait_for_timeout(1500)  # a second poll must not drop the empty states
        expect(page.locator("#routes")).to_contain_text("No routes yet")
        shot(page, "dashboard-fresh-install")
        assert errors == []
    finally:
        context.close()
        process.stop()


HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'


def test_markup_in_stored_names_and_answers_is_shown_as_text_never_run(
    browser: Browser, tmp_path: Path
) -> None:
    # What the parity panel shows comes from outside: the paths recorded, the answers' JSON
    # (keys and values, the candidate's are anyone's), the name someone signs in with.
    # Each is written here as markup that would run if a view ever built HTML from it.
    down = {"url": "http://127.0.0.1:1"}
    route = {"id": "products", "prefix": "/api", "monolith": "monolith", "service": "catalog"}
    table = {"default_backend": "monolith", "backends": {"monolith": down, "catalog": down}}
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(table | {"routes": [route]}))
    config = tmp_path / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    store = parity.open_store(str(tmp_path / "parity.sqlite3"))
    json_type = (("content-type", "application/json"),)
    answer = lambda value: json.dumps({HOSTILE: value, "ok": True}).encode()  # noqa: E731
    parity.record(
        store,
        (
            parity.Comparer().compare(
                parity.Exchange(
                    route="products", method="GET", path=f"/api/{HOSTILE}?n={n}",
                    primary=parity.Reply(200, json_type, answer(HOSTILE)),
                    candidate=parity.Reply(200, json_type, answer(f"{HOSTILE}!")),
                    secondary=parity.Reply(200, json_type, answer(HOSTILE)),
                    at=time.time() - 60,
                )
            )
            for n in range(5)
        ),
    )  # fmt: skip
    store.close()
    process = DashboardProcess(
        "--config", str(config), "--proxy-admin", "http://127.0.0.1:1",
        "--parity-store", str(tmp_path / "parity.sqlite3"),
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page, errors = open_page(context, process.url)
        sign_in(page, name=HOSTILE)
        panel = page.locator("#parity")
        expect(panel).to_contain_text(HOSTILE, timeout=WAIT_MS)
        panel.locator("button.field").first.click()
        shown = json.dumps(f"{HOSTILE}!")  # the answer's JSON, pretty-printed
        expect(page.locator("#example")).to_contain_text(shown, timeout=WAIT_MS)
        page.wait_for_timeout(1500)  # a second poll redraws every panel
        assert page.evaluate("window.__xss") is None
        assert page.locator("#board img").count() == 0
        assert errors == []
    finally:
        context.close()
        process.stop()
