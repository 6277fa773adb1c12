"""Shared fixtures: the small shop project copied to a scratch dir, and an analysis runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strangler_analyzer.api import Options, analyze
from strangler_analyzer.boundaries import Boundaries

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
