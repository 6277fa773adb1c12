"""A real open-source Django project, django-oscar from PyPI, analyzed end to end.

The wheel is downloaded once with pip into ~/.cache/strangler-tests and reused; its code is
never committed here. Only its Python files are copied, with one broken file added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from analyzer.api import Options, analyze

OSCAR = "django-oscar==4.2.1"
CACHE = Path.home() / ".cache" / "strangler-tests"


def oscar_source() -> Path:
    """Unpacked django-oscar wheel in the shared test cache (downloaded on first use)."""
    unpacked = CACHE / "django-oscar-4.2.1"
    if (unpacked / "oscar" / "apps").is_dir():
        return unpacked
    wheels = CACHE / "pypi"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("django_oscar-4.2.1-*.whl"))
    if not found:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             OSCAR, "-d", str(wheels)], capture_output=True, text=True, timeout=240)
        found = sorted(wheels.glob("django_oscar-4.2.1-*.whl"))
        if not found:
            pytest.skip(f"could not download {OSCAR} from PyPI: {result.stderr[-300:]}")
    temporary = CACHE / "django-oscar-4.2.1.partial"
    shutil.rmtree(temporary, ignore_errors=True)
    with zipfile.ZipFile(found[0]) as wheel:
        wheel.extractall(temporary, [n for n in wheel.namelist() if n.endswith(".py")])
    temporary.rename(unpacked)
    return unpacked


def test_django_oscar_is_analyzed_without_crashing(tmp_path):
    root = tmp_path / "oscar-project"
    shutil.copytree(oscar_source(), root)
    broken = root / "oscar" / "apps" / "order" / "broken_fork.py"
    broken.write_text("ok = 1\nbroken = = 2\n")
    report = analyze(Options(path=str(root), jobs=2, cache_dir=str(tmp_path / "cache"))).report
    stats = report["stats"]
    assert stats["files"] > 400 and stats["migrations"] > 100
    assert stats["models"] >= 70 and stats["apps"] >= 25
    assert stats["parse_errors"] == [{"file": "oscar/apps/order/broken_fork.py", "line": 2,
                                      "message": stats["parse_errors"][0]["message"]}]
    assert all(set(u) == {"file", "line", "message"} for u in stats["unresolved"])
    models = {m: c["name"] for c in report["contexts"] for m in c["models"]}
    assert {"order.Order", "catalogue.Product", "basket.Basket", "partner.StockRecord"} <= set(
        models)
    assert models["order.Order"] == models["order.Line"]
    assert 5 <= report["metrics"]["contexts"] <= 30
    assert report["metrics"]["modularity"] > report["metrics"]["baseline"]["modularity"]
    # Oscar loads models by name: get_model("partner", "StockRecord") is a read with evidence.
    reads = [e for d in report["dependencies"] if d["kind"] == "read"
             and d["target"] == models["partner.StockRecord"] for e in d["evidence"]]
    assert any('get_model("partner", "StockRecord")' in e["detail"] for e in reads)
    relation = [e for d in report["dependencies"] if d["kind"] == "relation" for e in
                d["evidence"] if e["file"] == "oscar/apps/order/abstract_models.py"]
    assert relation and all(e["line"] > 0 for e in relation)
