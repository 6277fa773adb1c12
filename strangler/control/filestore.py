"""Route table in a TOML or JSON file (the embedded default), history in a JSON-lines file.

The file stays the human-editable source of truth: an edit made by hand is picked up by
watching proxies (after validation) and recorded in the history by the first reader that
sees it, so every table has a version number of its own. The history lives next to it in
`<file>.history.jsonl`. Writers hold an exclusive flock and readers a shared one, so no
reader ever sees the history and the file from two different versions.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from strangler.control import tomlout
from strangler.control.messages import ValidationFailed
from strangler.control.store import (
    ConcurrentChange,
    RouteStore,
    Version,
    now_iso,
    read_table_file,
    validated,
)


def table_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


class FileStore(RouteStore):
    """A route table file plus its audit history; safe for several processes on one host."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.history_path = self.path.with_name(self.path.name + ".history.jsonl")
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def change_token(self) -> object:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)  # ctime: chmod too

    def _entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.history_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    @staticmethod
    def _version(entry: dict[str, Any]) -> Version:
        table, _ = validated(entry["after"])
        return Version(
            entry["version"],
            table,
            entry["after"],
            entry["who"],
            entry["at"],
            entry["why"],
            entry.get("before"),
        )

    def _on_disk(self, entries: list[dict[str, Any]]) -> Version:
        """The file's table; numbered after the history when it was edited by hand."""
        table, raw = validated(read_table_file(self.path))
        last = entries[-1] if entries else None
        if last is not None and last["hash"] == table_hash(raw):
            return Version(
                last["version"],
                table,
                raw,
                last["who"],
                last["at"],
                last["why"],
                last.get("before"),
            )
        number = last["version"] + 1 if last else 1
        return Version(
            number,
            table,
            raw,
            "(edited on disk)",
            now_iso(),
            "file changed outside `strangler route`",
            last["after"] if last else None,
        )

    def is_empty(self) -> bool:
        with self._locked(shared=True):
            return not self.path.exists() and not self._entries()

    def current(self) -> Version:
        with self._locked(shared=True):
            entries = self._entries()
            version = self._on_disk(entries)
        if version.who != "(edited on disk)" or (
            entries and entries[-1]["version"] >= version.number
        ):
            return version
        try:
            with self._locked():  # record the hand edit, so its number is its own for good
                entries = self._entries()
                version = self._on_disk(entries)
                if not entries or entries[-1]["hash"] != table_hash(version.raw):
                    self._append(version, version.raw)
        except PermissionError:
            pass  # a read-only copy: shown with the number it would get, recorded by a writer
        return version

    def history(self, limit: int = 50) -> list[Version]:
        with self._locked(shared=True):
            entries = self._entries()
        return [self._version(e) for e in reversed(entries[-limit:])]

    def get(self, number: int) -> Version | None:
        with self._locked(shared=True):
            entry = next((e for e in self._entries() if e["version"] == number), None)
        return self._version(entry) if entry else None

    @contextlib.contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        """flock on `<file>.lock`: exclusive for writers, shared for readers."""
        try:
            lock = open(self.lock_path, "a")  # noqa: SIM115 - closed below
        except PermissionError:
            if not shared:
                raise
            yield  # a reader in a read-only directory: no writer can be there either
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, version: Version, raw: dict[str, Any]) -> None:
        entry = {
            "version": version.number,
            "at": version.at,
            "who": version.who,
            "why": version.why,
            "before": version.before,
            "after": raw,
            "hash": table_hash(raw),
        }
        with open(self.history_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _write_file(self, raw: dict[str, Any]) -> None:
        text = (
            json.dumps(raw, indent=2) + "\n" if self.path.suffix == ".json" else tomlout.dumps(raw)
        )
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a watcher never reads half a file

    def _edit(self, edit: Callable[[Version], dict[str, Any]], who: str, why: str) -> Version:
        """Read, edit and write under one exclusive lock: no other change can land between."""
        with self._locked():
            latest = self._on_disk(self._entries())
            return self._commit_locked(validated(edit(latest))[1], who, why, latest.number)

    def _commit(self, raw: dict[str, Any], who: str, why: str, expect: int | None) -> Version:
        with self._locked():
            return self._commit_locked(raw, who, why, expect)

    def _commit_locked(
        self, raw: dict[str, Any], who: str, why: str, expect: int | None
    ) -> Version:
        entries = self._entries()
        try:
            on_disk: Version | None = self._on_disk(entries)
        except ValidationFailed:
            on_disk = None  # a broken or missing file is replaced, not recorded
        if on_disk is not None:
            if expect is not None and on_disk.number != expect:
                raise ConcurrentChange(f"table is at version {on_disk.number}, not {expect}")
            if not entries or entries[-1]["hash"] != table_hash(on_disk.raw):
                self._append(on_disk, on_disk.raw)
            before: dict[str, Any] | None = on_disk.raw
            number = on_disk.number + 1
        else:
            before = entries[-1]["after"] if entries else None
            number = entries[-1]["version"] + 1 if entries else 1
        table, _ = validated(raw)
        version = Version(number, table, raw, who, now_iso(), why, before)
        # The file first: a writer killed between the two leaves a table in force that the
        # next reader records as a hand edit, never a history entry for a table that was not.
        self._write_file(raw)
        self._append(version, raw)
        return version
