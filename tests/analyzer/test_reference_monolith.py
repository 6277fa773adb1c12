"""The reference monolith is the first patient: its domains and seeded couplings must show up.

Expected lines are looked up in the monolith's source rather than hard-coded, so the test
keeps holding while the shop evolves, and still checks the exact line the analyzer cites.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler_analyzer.api import Options, analyze

MONOLITH = Path(__file__).resolve().parents[2] / "monolith"
DOMAINS = ("orders", "inventory", "payments", "shipping", "catalog", "cart", "customers")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return analyze(Options(path=str(MONOLITH), jobs=1, cache_dir=str(cache))).report


def line_of(relative: str, needle: str) -> int:
    lines = (MONOLITH / relative).read_text().splitlines()
    found = [i + 1 for i, text in enumerate(lines) if needle in text]
    assert found, f"{relative} no longer contains {needle!r}; update this test"
    return found[0]


def cited(report: dict, source: str, target: str, kind: str) -> set[tuple[str, int]]:
    """Evidence of a crossing: between contexts, or through an omnipresent unit."""
    crossings = [
        *report["dependencies"],
        *(d for unit in report["omnipresent"] for d in unit["dependencies"]),
    ]
    return {
        (e["file"], e["line"])
        for d in crossings
        if (d["source"], d["target"], d["kind"]) == (source, target, kind)
        for e in d["evidence"]
    }


def context_of(report: dict) -> dict[str, str]:
    return {m: c["name"] for c in report["contexts"] for m in c["models"]}


def test_each_business_domain_is_one_context_of_its_own(report):
    owner = context_of(report)
    homes = {}
    for domain in DOMAINS:
        found = {ctx for model, ctx in owner.items() if model.startswith(f"{domain}.")}
        assert len(found) == 1, f"{domain} models are spread over {found}"
        homes[domain] = found.pop()
    assert len(set(homes.values())) == len(DOMAINS), f"domains share a context: {homes}"
    assert homes["orders"] == "orders" and homes["inventory"] == "inventory"
    assert report["stats"]["parse_errors"] == []


def test_seeded_couplings_are_found_with_their_lines(report):
    # inventory reserves stock when orders sends order_placed
    assert (
        "inventory/receivers.py",
        line_of("inventory/receivers.py", "@receiver(order_placed"),
    ) in cited(report, "inventory", "orders", "signal")
    # shipping creates the shipment when payments sends payment_captured
    assert (
        "shipping/receivers.py",
        line_of("shipping/receivers.py", "@receiver(payment_captured"),
    ) in cited(report, "shipping", "payments", "signal")
    # a cross-app foreign key, written as a string
    assert (
        "orders/models.py",
        line_of("orders/models.py", "customer = models.ForeignKey("),
    ) in cited(report, "orders", "customers", "relation")
    # a Celery task of another app called with .delay
    assert (
        "inventory/tasks.py",
        line_of("inventory/tasks.py", "send_low_stock_alert.delay"),
    ) in cited(report, "inventory", "notifications", "task")


def test_extraction_order_puts_leaf_contexts_before_the_core(report):
    order = [e["context"] for e in report["extraction_order"]]
    assert order.index("notifications") < order.index("orders")
    assert order.index("reporting") < order.index("catalog")


def test_the_seeder_is_omnipresent_and_makes_no_dependency_between_contexts(report):
    units = {u["file"]: u for u in report["omnipresent"]}
    seeder = units["core/seeding.py"]
    assert len(seeder["apps"]) >= 6 and len(seeder["contexts"]) >= 6
    orders = next(c for c in seeder["contexts"] if c["context"] == "orders")
    assert {
        "file": "core/seeding.py",
        "line": line_of("core/seeding.py", "orders = Order.objects.bulk_create("),
        "detail": "orders = Order.objects.bulk_create(orders, batch_size=BATCH)",
    } in orders["evidence"]
    assert [
        e for d in report["dependencies"] for e in d["evidence"] if e["file"] == "core/seeding.py"
    ] == []
    assert all("monolith.core.seeding" not in c["modules"] for c in report["contexts"])
    # The notification tasks read the models of 6 apps (StockLevel.select_related("product",
    # "warehouse") joins catalog's table too): over the threshold, as django-oscar's dashboard
    # index is, and their crossings still answer under --check from notifications. The
    # reporting read side (5 apps) stays a context.
    assert sorted(units["notifications/tasks.py"]["apps"]) == [
        "catalog", "customers", "inventory", "orders", "payments", "shipping"
    ]  # fmt: skip
    assert units["notifications/tasks.py"]["context"] == "notifications"
    assert "reporting/queries.py" not in units
