"""The HAR recording shared by every proxy worker's parity process (`--workers N`)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from strangler.parity.worker import append_har


def append_many(path: str, writer: int, batches: int) -> None:
    for n in range(batches):
        append_har(Path(path), [{"writer": writer, "n": n}])


def test_workers_appending_at_once_lose_no_entry_and_never_break_the_file(tmp_path):
    """Two parity processes appending at the same time: every entry kept, valid JSON."""
    path = tmp_path / "shadow.har"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=append_many, args=(str(path), w, 150)) for w in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0, 0]
    entries = json.loads(path.read_text())["log"]["entries"]
    assert sorted((e["writer"], e["n"]) for e in entries) == [
        (w, n) for w in range(2) for n in range(150)
    ]
