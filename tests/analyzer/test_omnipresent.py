"""Omnipresent code units (seeders, dashboards) are set aside, Bunch-style, not clustered."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from strangler_analyzer.boundaries import Boundaries, parse_boundaries
from strangler_analyzer.omnipresent import DEFAULT_MIN_APPS, find_omnipresent
from strangler_analyzer.render import render

MODEL_APP = {f"model:{app}.M{i}": app for app in ("a", "b", "c", "d", "e") for i in (1, 2)}
# A seeder writing to four apps; a dashboard reading five but also defining a model; a view
# using two models of one app plus an import and its own app's layout hint.
EDGES = [
    *(("module:seed", f"model:{app}.M1", "write") for app in "abcd"),
    ("module:seed", "model:a.M2", "read"),
    *(("module:dash", f"model:{app}.M2", "read") for app in "abcde"),
    ("module:dash", "model:e.M1", "defines"),
    ("module:view", "model:a.M1", "read"),
    ("module:view", "model:a.M2", "write"),
    ("module:view", "module:seed", "import"),
    *(("module:view", f"model:{app}.M1", "same_app") for app in "bcde"),
]
DEFINERS = frozenset({"module:dash"})


def test_a_unit_is_omnipresent_when_its_model_uses_span_the_threshold_of_apps():
    assert find_omnipresent(EDGES, MODEL_APP, DEFINERS, 4) == {"module:seed": ("a", "b", "c", "d")}
    assert find_omnipresent(EDGES, MODEL_APP, DEFINERS, 5) == {}
    # layout hints (same_app), imports and defining models are not uses
    assert "module:view" not in find_omnipresent(EDGES, MODEL_APP, frozenset(), 2)
    assert "module:dash" in find_omnipresent(EDGES, MODEL_APP, frozenset(), 5)


def test_zero_turns_detection_off():
    assert find_omnipresent(EDGES, MODEL_APP, DEFINERS, 0) == {}


def test_the_threshold_is_configured_and_checked_in_boundaries_toml():
    default, problems = parse_boundaries("")
    assert problems == [] and default.omnipresent_min_apps == DEFAULT_MIN_APPS
    off, problems = parse_boundaries("[clustering]\nomnipresent_min_apps = 0\n")
    assert problems == [] and off.omnipresent_min_apps == 0
    for bad in ("-1", "'4'", "true", "2.5"):
        _, problems = parse_boundaries(f"[clustering]\nomnipresent_min_apps = {bad}\n")
        assert [p.id for p in problems] == ["boundaries.E008"], bad


def threshold(value: int) -> Boundaries:
    boundaries, problems = parse_boundaries(f"[clustering]\nomnipresent_min_apps = {value}\n")
    assert problems == []
    return boundaries


def seeder_sites(report: dict) -> list[dict]:
    return [e for d in report["dependencies"] for e in d["evidence"] if e["file"] == "shop/seed.py"]


def test_a_seeder_over_five_apps_is_listed_apart_with_evidence(seeded_shop, run_analysis):
    report = run_analysis(seeded_shop, threshold(5)).report
    (unit,) = report["omnipresent"]
    assert (unit["module"], unit["file"]) == ("shop.seed", "shop/seed.py")
    assert unit["apps"] == ["catalog", "customers", "inventory", "orders", "payments"]
    touched = {c["context"]: c for c in unit["contexts"]}
    assert set(touched) == {c["name"] for c in report["contexts"]}
    assert touched["payments"]["evidence"] == [
        {"file": "shop/seed.py", "line": 13, "detail": "Payment.objects.create(amount=1)"}
    ]
    assert touched["orders"]["kinds"] == ["write"] and unit["count"] == 5
    assert "split it per context" in unit["suggestion"]
    assert seeder_sites(report) == []
    assert all("shop.seed" not in c["modules"] for c in report["contexts"])
    assert report["options"]["omnipresent_min_apps"] == 5
    text = render(report, "text")
    assert "Omnipresent code, in no context (uses the models of 5 or more apps)" in text
    assert "shop/seed.py:9" in text
    md = render(report, "md")
    assert "### `shop/seed.py` (shop.seed)" in md and "`shop/seed.py:13`" in md
    assert '"omnipresent:shop/seed.py" -> "payments" [style=dotted' in render(report, "dot")
    assert "-.->" in render(report, "mermaid")


def test_below_the_threshold_or_disabled_the_seeder_is_clustered_as_before(
    seeded_shop, run_analysis
):
    for boundaries in (threshold(6), threshold(0)):
        report = run_analysis(seeded_shop, boundaries).report
        assert report["omnipresent"] == []
        assert any(e["line"] == 13 for e in seeder_sites(report))
        assert any("shop.seed" in c["modules"] for c in report["contexts"])


def test_json_with_omnipresent_units_is_byte_identical_across_runs(seeded_shop, tmp_path):
    rules = tmp_path / "b.toml"
    rules.write_text("[clustering]\nomnipresent_min_apps = 5\n")

    def run(seed: str, *extra: str) -> str:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "strangler",
                "analyze",
                str(seeded_shop),
                "--json",
                "--boundaries",
                str(rules),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    first = run("1", "--no-cache")
    assert first == run("999", "--cache-dir", str(tmp_path / "c"), "-j", "2")
    assert [u["file"] for u in json.loads(first)["omnipresent"]] == ["shop/seed.py"]
