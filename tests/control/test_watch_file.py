"""A proxy's watcher on the file store: never steps back, says why the table is not current."""

from __future__ import annotations

import json

from strangler.control import FileStore, open_store
from strangler.control.store import Version
from strangler.control.watch import StoreWatcher
from tests.control.test_validate import base


def watching(tmp_path) -> tuple[FileStore, StoreWatcher, list[Version]]:
    store = open_store(str(tmp_path / "routes.json"))
    assert isinstance(store, FileStore)
    store.apply(base(weight=0), who="ana")
    store.set_weight("products", 10, who="ana")
    watcher = StoreWatcher(open_store(str(store.path)))
    handed: list[Version] = []
    watcher.on_version = handed.append
    assert watcher.load().number == 2
    return store, watcher, handed


def edit(store: FileStore, weight: int) -> None:
    raw = json.loads(store.path.read_text())
    raw["routes"][0]["weight"] = weight
    raw["routes"][0]["state"] = "canary"
    store.path.write_text(json.dumps(raw))


def test_a_reset_history_never_takes_the_proxy_back_to_a_lower_version(tmp_path):
    store, watcher, handed = watching(tmp_path)
    store.history_path.unlink()  # someone "cleans up": numbering would start again at 1
    edit(store, 30)
    watcher.check()
    assert handed == [], "version 1 after version 2 is not applied"


def test_the_watcher_says_why_while_the_file_cannot_be_read_and_recovers(tmp_path):
    store, watcher, handed = watching(tmp_path)
    text = store.path.read_text()
    store.path.unlink()
    watcher.check()
    assert "route.E000" in watcher.problem and "cannot read" in watcher.problem
    store.path.write_text(text)
    watcher.check()
    assert watcher.problem == "" and handed == [], "the same version again is not re-applied"


def test_hand_edits_a_read_only_reader_cannot_record_still_reach_the_proxy(tmp_path, monkeypatch):
    store, watcher, handed = watching(tmp_path)

    def read_only(*args: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(FileStore, "_append", read_only)
    edit(store, 30)
    watcher.check()
    edit(store, 40)
    watcher.check()
    assert [v.raw["routes"][0]["weight"] for v in handed] == [30, 40]
