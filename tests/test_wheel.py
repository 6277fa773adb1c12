"""What a user gets from `pip install django-strangler`: the wheel, in a fresh venv, from elsewhere.

Runs from a folder holding a user's own `analyzer` and `monolith` packages that fail on import,
so a wheel that shadowed them (or that they shadowed) is caught.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What a build must not see or write into: the checkout's own venv, caches and build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "var", ".demo", ".*_cache"
)
DECOY = 'raise ImportError("the user\'s own {name} package was imported")\n'


def run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(wheel, the fresh venv's python, a user's project folder) with the core install only."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    built = run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                 "-w", str(base / "dist")], cwd=base)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("django_strangler-*.whl")
    venv.create(base / "venv", with_pip=True)
    python = base / "venv" / "bin" / "python"
    core = run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=base)
    assert core.returncode == 0, core.stderr
    user = base / "user-project"
    for name in ("analyzer", "monolith", "extracted"):
        (user / name).mkdir(parents=True)
        (user / name / "__init__.py").write_text(DECOY.format(name=name))
    return wheel, python, user


def test_the_wheel_installs_only_strangler_and_strangler_analyzer(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("django_strangler-")}
    assert tops == {"strangler", "strangler_analyzer"}
    assert "strangler/_reference/monolith/settings.py" in names
    assert "strangler/_reference/extracted/catalog_service/settings.py" in names


def test_analyze_runs_on_the_reference_monolith_beside_a_users_analyzer_package(installed):
    _, python, user = installed
    result = run([str(python), "-m", "strangler", "analyze", str(ROOT / "monolith"), "--json"],
                 cwd=user)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stats"]["models"] == 24
    assert {"catalog", "orders"} <= {c["name"] for c in report["contexts"]}


def test_demo_without_the_demo_extra_says_what_to_install(installed):
    _, python, user = installed
    result = run([str(python), "-m", "strangler", "demo", "--work-dir", str(user / ".demo")],
                 cwd=user)  # fmt: skip
    assert result.returncode == 2
    assert "pip install 'django-strangler[demo]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (user / ".demo").exists()  # nothing done before saying so


def test_demo_with_the_demo_extra_runs_from_the_wheel_and_its_runbooks_validate(installed):
    """Every step up to the migration, from the installed wheel; the migration itself (two
    minutes here) runs from the checkout in tests/test_demo.py, and what it needs of the
    package beyond the earlier steps is the built-in runbooks, validated here."""
    wheel, python, user = installed
    extra = run([str(python), "-m", "pip", "install", "-q", f"{wheel}[demo]"], cwd=user)
    assert extra.returncode == 0, extra.stderr
    steps = "analyze,database,monolith,checkout,cdc,parity,proxy"
    result = run([str(python), "-m", "strangler", "demo", "--work-dir", str(user / ".demo"),
                  "--steps", steps, "--json"], cwd=user, timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    assert outcome["ok"] is True
    facts = outcome["facts"]
    assert facts["checkout"]["status"] == "paid"
    assert facts["parity"]["gate"] == "pass"
    assert "dashboard http://" in result.stderr  # started by the proxy step, from the wheel
    for runbook in ("extract-context", "rollback-route"):
        valid = run([str(python), "-m", "strangler", "runbook", "validate", runbook], cwd=user)
        assert valid.returncode == 0, valid.stdout + valid.stderr
