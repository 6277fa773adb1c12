"""The layers contract catches what docs/architecture.md forbids, on a copy of the tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def copy_tree(target: Path) -> Path:
    """The packages and pyproject.toml, as real folders (the analyzer under its import name)."""
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("strangler", "monolith", "extracted"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    shutil.copytree(ROOT / "analyzer", target / "strangler_analyzer", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", target)
    return target


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


def test_the_tree_as_it_is_keeps_every_contract(tmp_path):
    result = lint_imports(copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("strangler/control/model.py", "import strangler.proxy", "the toolkit's layers"),
        ("strangler/proxy/__init__.py", "import strangler.cdc", "the toolkit's layers"),
        ("strangler_analyzer/api.py", "import strangler.control", "depends on nothing of ours"),
        ("strangler/cdc/apply.py", "import monolith.catalog.models", "never imports its users"),
    ],
)
def test_an_import_against_the_order_breaks_its_contract(tmp_path, module, line, contract):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(f"{path.read_text()}\n{line}  # injected by the test\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract}" in result.stdout
    assert "1 broken" in result.stdout
