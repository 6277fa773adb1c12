"""The HTML report rendered by a real browser (headless Chromium): what a reviewer would see."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from strangler_analyzer.api import Options, analyze
from strangler_analyzer.boundaries import parse_boundaries
from strangler_analyzer.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian package `chromium`; `make test` installs it)",
)


class Page(HTMLParser):
    """Collects the elements a test asks about: their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)


def browse(url: str, tmp_path, *extra: str) -> Page:
    result = subprocess.run(
        [
            CHROMIUM,
            *extra,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    page = Page()
    page.feed(result.stdout)
    return page


def test_the_context_map_draws_every_context_and_opens_evidence(shop, run_analysis, tmp_path):
    report = run_analysis(shop).report
    out = tmp_path / "report.html"
    out.write_text(render_html(report))
    page = browse(f"file://{out}#context=inventory", tmp_path)
    drawn = sorted(
        a["data-name"]
        for tag, a in page.elements
        if tag == "g" and a.get("class", "").startswith("context")
    )
    assert drawn == sorted(c["name"] for c in report["contexts"])
    selected = [
        a["data-name"]
        for tag, a in page.elements
        if tag == "g" and "selected" in a.get("class", "")
    ]
    assert selected == ["inventory"]
    pairs = {(d["source"], d["target"]) for d in report["dependencies"]}
    arrows = {
        (a["data-source"], a["data-target"])
        for tag, a in page.elements
        if tag == "path" and "link" in a.get("class", "")
    }
    assert arrows == pairs
    details = [a for tag, a in page.elements if a.get("id") == "details"]
    assert details == [{"id": "details", "data-context": "inventory"}]
    text = " ".join(page.text)
    assert "inventory/receivers.py:9" in text  # the signal receiver's line, clickable evidence
    assert "Context inventory" in text
    assert re.search(r"inventory \u2192 orders: signal", text)


def test_the_page_needs_no_network(shop, run_analysis, tmp_path):
    page_source = render_html(run_analysis(shop).report)
    assert not re.search(r"(src|href)=\"https?://", page_source)
    assert "<link " not in page_source


def test_omnipresent_code_is_listed_apart_and_opens_its_evidence(
    seeded_shop, run_analysis, tmp_path
):
    boundaries, _ = parse_boundaries("[clustering]\nomnipresent_min_apps = 5\n")
    report = run_analysis(seeded_shop, boundaries).report
    out = tmp_path / "report.html"
    out.write_text(render_html(report))
    page = browse(f"file://{out}#omnipresent=shop/seed.py", tmp_path)
    buttons = [a for tag, a in page.elements if tag == "button" and a.get("class") == "omnipresent"]
    assert len(buttons) == 1
    details = [a for tag, a in page.elements if a.get("id") == "details"]
    assert details == [{"id": "details", "data-omnipresent": "shop/seed.py"}]
    text = " ".join(page.text)
    assert "Omnipresent: shop/seed.py" in text and "shop/seed.py:13" in text
    assert "split it per context" in text


def test_the_map_reads_as_a_context_map_with_filters_stats_search_and_prefixes(
    shop, run_analysis, tmp_path
):
    report = run_analysis(shop).report
    out = tmp_path / "report.html"
    out.write_text(render_html(report))
    shot = tmp_path / "map.png"
    browse(f"file://{out}#context=payments", tmp_path, "--window-size=1400,1000",
           f"--screenshot={shot}")  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    page = browse(f"file://{out}#context=payments&find=order", tmp_path)
    kinds = sorted(
        a["data-kind"] for tag, a in page.elements if tag == "input" and "data-kind" in a
    )
    assert kinds == sorted({d["kind"] for d in report["dependencies"]})
    assert [a["id"] for tag, a in page.elements if a.get("type") == "range"] == ["min-weight"]
    widths = [float(a["stroke-width"]) for tag, a in page.elements if "link" in a.get("class", "")]
    assert len(set(widths)) > 1  # edge width follows weight
    text = " ".join(page.text)
    assert "URL prefixes it would take over at the proxy: /api/payments" in text
    assert "share of dependency weight that crosses contexts" in text  # metrics explained
    assert f"parse errors {len(report['stats']['parse_errors'])}" in " ".join(text.split())
    hits = {a["data-context"] for tag, a in page.elements if a.get("class") == "hit"}
    assert hits == {"orders"}  # orders.Order, orders.OrderLine and the orders modules
    heavy = [a for tag, a in page.elements if tag == "tr" and a.get("class") == "heavy"]
    assert len(heavy) == min(10, len(report["dependencies"]))


def test_the_reference_monoliths_map_keeps_every_context_apart_and_inside(tmp_path):
    monolith = Path(__file__).resolve().parents[2] / "monolith"
    report = analyze(Options(path=str(monolith), cache_dir=str(tmp_path / "c"))).report
    out = tmp_path / "report.html"
    out.write_text(render_html(report))
    page = browse(f"file://{out}", tmp_path)
    (svg,) = [a for tag, a in page.elements if tag == "svg" and a.get("id") == "contextmap"]
    size = float(svg["width"])
    circles = [
        (float(a["cx"]), float(a["cy"]), float(a["r"]))
        for tag, a in page.elements
        if tag == "circle"
    ]
    assert len(circles) == len(report["contexts"])
    for i, (x, y, r) in enumerate(circles):
        assert r <= x <= size - r and r <= y <= size - r
        for x2, y2, r2 in circles[i + 1 :]:
            assert ((x - x2) ** 2 + (y - y2) ** 2) ** 0.5 > r + r2  # no two circles overlap
