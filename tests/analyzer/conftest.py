"""Shared fixtures: the small shop project copied to a scratch dir, and an analysis runner."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from strangler_analyzer.api import Options, analyze
from strangler_analyzer.boundaries import Boundaries
from tests.analyzer.test_analyze import cli

FIXTURE = Path(__file__).parent / "fixtures" / "shop"
BROKEN = "def ok():\n    return 1\n\n\nvalue = = 2\n"
PEP695 = "type Pair[T] = tuple[T, T]\n\n\ndef first[T](items: list[T]) -> T:\n    return items[0]\n"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A writable copy of the fixture shop, plus a file that does not parse and one in 3.12
    syntax (kept out of the repo so ruff and Python 3.11 never read them)."""
    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)
    (root / "payments" / "broken.py").write_text(BROKEN)
    (root / "payments" / "modern.py").write_text(PEP695)
    return root


SEEDER = """from catalog.models import Product
from customers.models import Address
from inventory.models import Stock
from orders.models import Order
from payments.models import Payment


def seed():
    Product.objects.bulk_create([])
    Address.objects.bulk_create([])
    Stock.objects.bulk_create([])
    Order.objects.bulk_create([])
    Payment.objects.create(amount=1)
"""


@pytest.fixture
def seeded_shop(shop: Path) -> Path:
    """The shop plus a data seeder writing to all five apps (omnipresent code)."""
    (shop / "shop" / "seed.py").write_text(SEEDER)
    return shop


@pytest.fixture
def run_analysis(tmp_path: Path):
    def run(root: Path, boundaries: Boundaries | None = None, **kwargs):
        options = Options(
            path=str(root),
            jobs=1,
            cache_dir=str(tmp_path / "cache"),
            boundaries=boundaries or Boundaries(),
            **kwargs,
        )
        return analyze(options)

    return run


# The shop's management command (the gate's cases call it by name)
COMMAND = (
    "from django.core.management.base import BaseCommand\n\nfrom payments.models import Payment\n"
    "\n\nclass Command(BaseCommand):\n    def handle(self, *args, **options):\n"
    "        Payment.objects.update(amount=0)\n"
)


@pytest.fixture(scope="module")
def locked_once(tmp_path_factory):
    """The shop (without its broken file) and a lock of its proposal, made once."""
    root = tmp_path_factory.mktemp("locked")
    shop = shutil.copytree(FIXTURE, root / "shop")
    commands = shop / "payments" / "management" / "commands"
    commands.mkdir(parents=True)
    (commands / "resync_payments.py").write_text(COMMAND)
    lock = root / "boundaries.toml"
    locked = cli(str(shop), "--lock", str(lock), "--no-cache")
    assert locked.returncode == 0, locked.stderr
    contexts = {c["name"]: c for c in tomllib.loads(lock.read_text())["context"]}
    assert contexts["catalog"]["apps"] == ["catalog"] and contexts["catalog"]["depends_on"] == []
    assert cli(str(shop), "--check", str(lock), "--no-cache").returncode == 0
    return shop, lock


@pytest.fixture
def locked_shop(locked_once, tmp_path):
    """A writable copy of the locked shop, and a copy of its lock (a test may pin more)."""
    shop, lock = locked_once
    return shutil.copytree(shop, tmp_path / "shop"), Path(shutil.copy(lock, tmp_path))


def crossings_in(shop: Path, lock: Path, path: str) -> tuple[int, list[dict]]:
    """Run the check of ``shop`` against ``lock``: its exit code and each violation evidenced
    in ``path``, with the evidence's line and quoted text."""
    result = cli(str(shop), "--check", str(lock), "--no-cache", "--json")
    found = [
        {
            "crossing": (d["source"], d["target"], d["kind"]),
            "line": e["line"],
            "detail": e["detail"],
        }
        for d in json.loads(result.stdout)["violations"]
        for e in d["evidence"]
        if e["file"] == path
    ]
    return result.returncode, found


def appended_crossings(shop: Path, lock: Path, path: str, text: str) -> tuple[int, list[dict]]:
    """Append ``text`` to ``path`` in the locked shop, then ``crossings_in`` that file."""
    target = shop / path
    target.write_text(target.read_text() + text)
    return crossings_in(shop, lock, path)


def line_of(path: Path, text: str) -> int:
    """The 1-based line of ``path`` holding ``text``, as an editor numbers it."""
    return next(n for n, line in enumerate(path.read_text().split("\n"), 1) if text in line)
