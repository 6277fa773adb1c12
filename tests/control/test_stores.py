"""Both stores: versioned, audited changes; rejected tables change nothing; rollback."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from strangler.control import FileStore, ValidationFailed, open_store
from strangler.control.store import ConcurrentChange, RouteChanged
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


def many_routes(count: int) -> dict:
    raw = base(weight=0)
    route = raw["routes"][0]
    raw["routes"] = [{**route, "id": f"r{i}", "prefix": f"/api/v1/r{i}"} for i in range(count)]
    return raw


def test_concurrent_flips_of_different_routes_all_land_as_consecutive_versions(store_location):
    open_store(store_location).apply(many_routes(24), who="setup")

    def flip(i: int) -> int:
        store = open_store(store_location)  # each operator has a store of their own
        try:
            return store.set_weight(f"r{i}", 10 + i, who=f"op{i}").number
        finally:
            getattr(store, "close", lambda: None)()

    with ThreadPoolExecutor(24) as pool:
        numbers = sorted(pool.map(flip, range(24)))
    assert numbers == list(range(2, 26)), "each flip its own version, none refused"
    store = open_store(store_location)
    weights = {r["id"]: r["weight"] for r in store.current().raw["routes"]}
    assert weights == {f"r{i}": 10 + i for i in range(24)}
    history = list(reversed(store.history()))
    assert [v.number for v in history] == list(range(1, 26))
    for older, newer in itertools.pairwise(history):
        assert newer.before == older.raw, f"version {newer.number} starts where the last ended"


def test_readers_never_see_a_half_written_change(tmp_path):
    """While flips land, every version number a reader sees carries one table only."""
    location = str(tmp_path / "routes.toml")
    open_store(location).apply(many_routes(4), who="setup")
    seen: dict[int, dict] = {}
    who: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        reader = open_store(location)
        while not stop.is_set():
            version = reader.current()
            assert seen.setdefault(version.number, version.raw) == version.raw, version.number
            who.add(version.who)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    writer = open_store(location)
    try:
        for i in range(40):
            writer.set_weight(f"r{i % 4}", i % 100, who="writer")
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert "(edited on disk)" not in who, "no change is ever mistaken for a hand edit"
    assert len(seen) > 1


def test_a_flip_of_a_route_someone_changed_meanwhile_is_refused_and_says_by_whom(
    store_location, monkeypatch
):
    backoffs: list[float] = []
    monkeypatch.setattr("strangler.control.store.time.sleep", backoffs.append)
    ana, bo = open_store(store_location), open_store(store_location)
    ana.apply(base(weight=0), who="setup")
    read_current = ana.current

    def read_then_let_bo_flip_the_same_route():
        seen = read_current()
        del ana.current
        bo.set_weight("products", 50, who="bo", why="half")
        return seen

    ana.current = read_then_let_bo_flip_the_same_route
    with pytest.raises(RouteChanged) as refused:
        ana.set_weight("products", 25, who="ana")
    assert "route products was changed by version 2 (bo: 'half')" in str(refused.value)
    assert isinstance(refused.value, ConcurrentChange)
    assert backoffs == [], "refused at once, not retried"
    assert open_store(store_location).current().raw["routes"][0]["weight"] == 50


def test_two_hand_edits_get_two_version_numbers(tmp_path):
    path = tmp_path / "routes.json"
    store = open_store(str(path))
    store.apply(base(weight=5), who="ana")
    path.write_text(path.read_text().replace('"weight": 5', '"weight": 7'))
    first = store.current()
    path.write_text(path.read_text().replace('"weight": 7', '"weight": 8'))
    second = open_store(str(path)).current()
    assert (first.number, second.number) == (2, 3)
    assert [v.raw["routes"][0]["weight"] for v in store.history()] == [8, 7, 5]


@pytest.mark.parametrize("dies_in", ["replace", "_append"])
def test_a_writer_killed_midway_leaves_no_history_entry_for_a_table_never_in_force(
    tmp_path, monkeypatch, dies_in
):
    location = str(tmp_path / "routes.toml")
    open_store(location).apply(base(weight=0), who="ana")

    def die(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for kill -9 at this point of the write

    with monkeypatch.context() as patch:
        if dies_in == "replace":  # the new file would have taken effect here
            patch.setattr("strangler.control.filestore.os.replace", die)
        else:  # the new file is in force, its history entry not yet written
            patch.setattr(FileStore, "_append", die)
        with pytest.raises(KeyboardInterrupt):
            open_store(location).set_weight("products", 30, who="bo")
    reader = open_store(location)
    in_force = reader.current().raw["routes"][0]["weight"]
    history = reader.history()
    assert history[0].raw["routes"][0]["weight"] == in_force, "the newest entry is what serves"
    if in_force == 0:
        assert [v.number for v in history] == [1], "nothing recorded for the table never written"
    else:
        assert [(v.number, v.who) for v in history] == [(2, "(edited on disk)"), (1, "ana")]


@pytest.mark.parametrize(
    "change",
    [
        lambda store, seen: store.set_weight("products", 25, who="runner", seen=seen),
        lambda store, seen: store.set_shadow("products", 10, who="runner", seen=seen),
        lambda store, seen: store.set_state("products", "service", who="runner", seen=seen),
    ],
    ids=["weight", "shadow", "state"],
)
def test_a_change_of_a_route_read_in_an_older_version_is_refused(store_location, change):
    # A runbook read the route in version 1 and decides to change it; a human rolls it back
    # first. Passing the version it read, its write is refused instead of undoing theirs.
    store = open_store(store_location)
    seen = store.apply(base(weight=10), who="setup").number
    store.set_weight("products", 0, who="oncall", why="5xx on the service")
    with pytest.raises(RouteChanged) as refused:
        change(store, seen)
    assert "changed by version 2 (oncall: '5xx on the service')" in str(refused.value)
    assert store.current().number == 2
    assert change(store, 2).number == 3  # read in the newest version: goes through
