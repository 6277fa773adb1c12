"""The gate checks what we claim: `make test` runs each check, and each check catches its case.

The layers contract is tried on a copy of the tree with one forbidden import added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LINT_IMPORTS = BIN / "lint-imports"
TYPO = """\
from typing import Literal

State = Literal["monolith", "canary", "service", "retired"]


def is_canary(state: State) -> bool:
    return state == "canery"
"""


def test_make_test_runs_the_formatter_the_type_checker_and_the_layers_contract():
    dry_run = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    commands = dry_run.stdout
    for check in ("ruff check .", "ruff format --check .", "mypy", "lint-imports", "pytest"):
        assert check in commands, f"make test does not run {check}"


def test_mypy_with_our_settings_catches_a_literal_compared_with_a_typo(tmp_path):
    (tmp_path / "typo.py").write_text(TYPO)
    result = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
         str(tmp_path / "typo.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Non-overlapping equality check" in result.stdout


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
