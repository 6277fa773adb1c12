"""The run store, the same on SQLite and PostgreSQL: one lease holder, events in order."""

from __future__ import annotations

import threading
import time

import pytest

from strangler.runbook.store import LeaseHeld, RunStore


def new_run(store: RunStore) -> str:
    return store.create("rb", "rb.toml", "name = 'rb'", {}, {"routes": "r"}, "one", "t", "").id


def test_runners_starting_at_the_same_moment_get_one_lease(run_store):
    setup = RunStore(run_store)
    run_ids = [new_run(setup) for _ in range(10)]
    setup.close()
    won: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
    start = threading.Barrier(4)

    def runner(name: str) -> None:
        store = RunStore(run_store)
        start.wait()
        for run_id in run_ids:
            try:
                store.acquire(run_id, name, 30)
                won[run_id].append(name)
            except LeaseHeld:
                pass
        store.close()

    threads = [threading.Thread(target=runner, args=(f"runner-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(len(names) == 1 for names in won.values()), won


def test_a_lapsed_lease_can_be_taken_and_the_old_holder_can_write_no_more(run_store):
    store = RunStore(run_store)
    run_id = new_run(store)
    store.acquire(run_id, "first", 0.2)
    with pytest.raises(LeaseHeld, match="is being run by first"):
        store.acquire(run_id, "second", 5)
    time.sleep(0.3)
    store.acquire(run_id, "second", 5)
    with pytest.raises(LeaseHeld):
        store.renew(run_id, "first", 5)
    with pytest.raises(LeaseHeld):
        store.record(run_id, "one", 1, "action_started", "first", owner="first")
    store.record(run_id, "one", 1, "action_started", "second", owner="second")
    assert [e.kind for e in store.events(run_id)] == ["run_created", "action_started"]
    assert [e.who for e in store.events(run_id, "action_started")] == ["second"]
    store.close()
