"""A real open-source Django project, django-oscar from PyPI, analyzed end to end.

The wheel is downloaded once with pip into ~/.cache/strangler-tests and reused; its code is
never committed here. Only its Python files are copied, with one broken file added.
"""

from __future__ import annotations

import shutil

import pytest

from strangler_analyzer.api import Options, analyze
from tests.analyzer.projects import oscar_source


def oscar_or_skip():
    source, why = oscar_source()
    if source is None:
        pytest.skip(why)
    return source


def test_django_oscar_is_analyzed_without_crashing(tmp_path):
    root = tmp_path / "oscar-project"
    shutil.copytree(oscar_or_skip(), root)
    broken = root / "oscar" / "apps" / "order" / "broken_fork.py"
    broken.write_text("ok = 1\nbroken = = 2\n")
    report = analyze(Options(path=str(root), jobs=2, cache_dir=str(tmp_path / "cache"))).report
    stats = report["stats"]
    assert stats["files"] > 400 and stats["migrations"] > 100
    assert stats["models"] >= 70 and stats["apps"] >= 25
    assert stats["parse_errors"] == [
        {
            "file": "oscar/apps/order/broken_fork.py",
            "line": 2,
            "message": "syntax error: invalid syntax",
        }
    ]
    # What cannot be read statically is listed where it is, not guessed: oscar's own loader.
    assert {
        "file": "oscar/core/loading.py",
        "line": 45,
        "message": "import_string() with a computed module name",
    } in stats["unresolved"]
    assert {
        "file": "oscar/core/compat.py",
        "line": 33,
        "message": "get_model() with a computed app or model name",
    } in stats["unresolved"]
    models = {m: c["name"] for c in report["contexts"] for m in c["models"]}
    assert {"order.Order", "catalogue.Product", "basket.Basket", "partner.StockRecord"} <= set(
        models
    )
    assert models["order.Order"] == models["order.Line"]
    assert 5 <= report["metrics"]["contexts"] <= 30
    assert report["metrics"]["modularity"] > report["metrics"]["baseline"]["modularity"]
    # Oscar loads models by name: get_model("partner", "StockRecord") is a read with evidence.
    reads = [
        e
        for d in report["dependencies"]
        if d["kind"] == "read" and d["target"] == models["partner.StockRecord"]
        for e in d["evidence"]
    ]
    assert any('get_model("partner", "StockRecord")' in e["detail"] for e in reads)
    relation = [
        e
        for d in report["dependencies"]
        if d["kind"] == "relation"
        for e in d["evidence"]
        if e["file"] == "oscar/apps/order/abstract_models.py"
    ]
    assert relation and all(e["line"] > 0 for e in relation)
