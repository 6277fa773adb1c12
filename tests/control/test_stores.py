"""Both stores: versioned, audited changes; rejected tables change nothing; rollback."""

from __future__ import annotations

import pytest

from strangler.control import ValidationFailed, open_store
from strangler.control.store import ConcurrentChange
from tests.control.test_validate import base


def test_changes_are_versioned_and_audited(store_location):
    store = open_store(store_location)
    first = store.apply(base(weight=0), who="ana", why="initial table")
    second = store.set_weight("products", 25, who="bo", why="canary")
    assert (first.number, second.number) == (1, 2)
    latest = store.history()[0]
    assert (latest.who, latest.why) == ("bo", "canary")
    assert latest.before["routes"][0]["weight"] == 0
    assert latest.raw["routes"][0]["weight"] == 25
    assert latest.raw["routes"][0]["state"] == "canary"
    assert latest.at.endswith("+00:00")
    assert store.current().number == 2


def test_an_invalid_table_is_rejected_and_nothing_changes(store_location):
    store = open_store(store_location)
    store.apply(base(weight=10), who="ana", why="initial")
    with pytest.raises(ValidationFailed) as rejected:
        store.apply(base(weight=10, service="ghost"), who="ana", why="typo")
    assert [m.id for m in rejected.value.messages] == ["route.E007"]
    with pytest.raises(ValidationFailed):
        store.set_weight("products", 150)
    assert store.current().number == 1
    assert len(store.history()) == 1


def test_rollback_restores_any_earlier_version_as_a_new_one(store_location):
    store = open_store(store_location)
    store.apply(base(weight=5), who="ana", why="start")
    for weight in (25, 50, 100):
        store.set_weight("products", weight, who="ana")
    rolled = store.rollback(2, who="bo", why="errors at 50%")
    assert rolled.number == 5
    assert rolled.raw == store.get(2).raw
    assert rolled.table.route("products").threshold == 2500
    assert "errors at 50%" in store.history()[0].why
    with pytest.raises(ValidationFailed):
        store.rollback(99)


def test_a_stale_writer_is_refused(store_location):
    store = open_store(store_location)
    store.apply(base(weight=5), who="ana", why="start")
    store.set_weight("products", 10)
    with pytest.raises(ConcurrentChange):
        store.apply(base(weight=20), expect=1)


def test_a_retired_route_cannot_be_lowered(store_location):
    store = open_store(store_location)
    store.apply(base(weight=100, state="retired"), who="ana", why="monolith path removed")
    with pytest.raises(ValidationFailed) as rejected:
        store.set_weight("products", 50)
    assert rejected.value.messages[0].id == "route.E013"


def test_a_hand_edited_file_is_picked_up_and_recorded(tmp_path):
    path = tmp_path / "routes.json"
    store = open_store(str(path))
    store.apply(base(weight=5), who="ana", why="start")
    path.write_text(path.read_text().replace('"weight": 5', '"weight": 7'))
    assert store.current().number == 2
    assert store.current().who == "(edited on disk)"
    store.set_weight("products", 9, who="bo")
    assert [v.number for v in store.history()] == [3, 2, 1]
    assert store.history()[1].raw["routes"][0]["weight"] == 7


def test_a_store_is_empty_until_the_first_table(store_location):
    store = open_store(store_location)
    assert store.is_empty()
    store.apply(base(weight=5), who="ana", why="seed")
    assert not store.is_empty()


def test_two_operators_flipping_two_routes_at_the_same_moment_both_land(store_location):
    """Bo's flip lands between Ana's read and write: neither is lost, nor refused."""
    raw = base(weight=0)
    raw["routes"].append(
        {
            "id": "orders",
            "prefix": "/api/v1/orders",
            "monolith": "monolith",
            "service": "catalog",
            "weight": 0,
        }
    )
    ana, bo = open_store(store_location), open_store(store_location)
    ana.apply(raw, who="setup")
    read_current = ana.current

    def read_then_let_bo_flip():
        seen = read_current()
        if ana.current is read_then_let_bo_flip:
            del ana.current  # only the first read races
            bo.set_weight("orders", 50, who="bo")
        return seen

    ana.current = read_then_let_bo_flip
    flipped = ana.set_weight("products", 25, who="ana")
    weights = {r["id"]: r["weight"] for r in flipped.raw["routes"]}
    assert weights == {"products": 25, "orders": 50}
    assert [(v.number, v.who) for v in ana.history()] == [(3, "ana"), (2, "bo"), (1, "setup")]
