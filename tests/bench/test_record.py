"""README's benchmark figures are the results files' figures (bench/record.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_record() -> ModuleType:
    """bench/record.py, loaded by path: bench/ is scripts, not a package."""
    spec = importlib.util.spec_from_file_location("bench_record", ROOT / "bench" / "record.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_figures_of_the_results_files():
    record = load_record()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert record.readme_block(readme) == record.block(), (
        "README's benchmark table differs from bench/results/: "
        "run .venv/bin/python bench/record.py --readme"
    )


def test_publish_prints_and_keeps_the_figures_with_machine_and_date(tmp_path, capsys):
    record = load_record()
    record.publish("seed", {"postgresql": {"loaddata_over_seed": 7.5}}, results=tmp_path)
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    kept = json.loads((tmp_path / "seed.json").read_text())
    assert json.loads(last_line) == kept
    assert kept["bench"] == "seed"
    assert kept["machine"]["cores"] >= 1 and kept["machine"]["cpu"]
    assert kept["date"].endswith("UTC")
    row = next(line for line in record.table(tmp_path).splitlines() if line.startswith("| seed"))
    assert "| 7.5 |" in row and kept["date"] in row and "not measured" not in row


def test_a_changed_result_makes_the_readme_check_fail(tmp_path):
    record = load_record()
    before = record.block(tmp_path)
    record.publish("cdc", {"changes_per_s": 5194.0}, results=tmp_path)
    after = record.block(tmp_path)
    assert before != after
    assert "| 5,194 |" in after


def test_every_benchmark_publishes_its_figures_and_readme_shows_them():
    record = load_record()
    benches = sorted(p for p in (ROOT / "bench").glob("*.py") if p.name != "record.py")
    assert benches
    for path in benches:
        called = re.search(rf'publish\(\s*"{path.stem}"', path.read_text())
        assert called, f"{path} does not end with publish({path.stem!r}, figures)"
        assert path.stem in record.HEADLINES, f"bench/record.py HEADLINES has no {path.stem}"
