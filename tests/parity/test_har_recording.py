"""The HAR recording shared by every proxy worker's parity process (`--workers N`)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from strangler.parity.worker import append_har
from tests.parity.shop_servers import har


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


def test_binary_bodies_are_recorded_as_base64_and_replayed_byte_for_byte(capsys, tmp_path):
    """A body that is not UTF-8 (an image upload, a protobuf answer) is written with HAR's
    `"encoding": "base64"`; decoded with replacement it was corrupted. The replay sends the
    request body back exactly and compares against the exact recorded answer; text bodies
    stay plain text."""
    from strangler.cli import main
    from strangler.parity import Exchange, Reply
    from strangler.parity.har import har_document, har_entry, parse_har
    from tests.parity.shop_servers import Behaviour, serve

    upload = bytes(range(256)) + b"\xff\xfe\x00PNG"
    answer = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xde\xad\xbe\xef"
    binary = Exchange("uploads", "POST", "/api/v1/uploads", Reply(201, (("content-type",
                      "image/png"),), answer), Reply(201), request_headers=(("Host",
                      "shop.example.com"),), request_body=upload, at=1.8e9)  # fmt: skip
    text = Exchange("uploads", "GET", "/api/v1/uploads/1", Reply(200, (), '{"n": "é"}'.encode()),
                    Reply(200), at=1.8e9)  # fmt: skip
    path = tmp_path / "shadow.har"
    path.write_text(json.dumps(har_document([har_entry(binary), har_entry(text)])))
    entries = json.loads(path.read_text())["log"]["entries"]
    assert entries[0]["request"]["postData"]["encoding"] == "base64"
    assert entries[0]["response"]["content"]["encoding"] == "base64"
    assert entries[1]["response"]["content"] == {"size": 11, "mimeType": "", "text": '{"n": "é"}'}
    (recorded_binary, _) = parse_har(path.read_text(), str(path))
    assert recorded_binary.body == upload and recorded_binary.recorded.body == answer

    sandbox = Behaviour()
    with serve(Behaviour()) as primary, serve(sandbox) as candidate:
        code = main(["parity", "replay", str(path), "--primary", primary, "--candidate",
                     candidate, "--allow-writes", candidate, "--route", "uploads",
                     "--store", str(tmp_path / "p.sqlite3")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert [(m, p) for m, p, _ in sandbox.seen if m == "POST"] == [("POST", "/api/v1/uploads")]
    assert sandbox.bodies[[m for m, _, _ in sandbox.seen].index("POST")] == upload


def test_a_body_too_deep_to_redact_is_withheld_not_a_crash():
    """With fields to redact, a JSON body nested past the parser's limit raised RecursionError
    out of the recording (losing the worker's batch); now it is kept as [redacted] whole, in
    the HAR and in the stored example alike."""
    from strangler.parity import Exchange, Reply
    from strangler.parity.har import har_entry

    deep = b'{"email": "ana@example.com", "tree": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    exchange = Exchange("products", "GET", "/x", Reply(200, (), deep), Reply(200, (), b"{}"),
                        redact=("email",))  # fmt: skip
    assert har_entry(exchange)["response"]["content"]["text"] == "[redacted]"
    assert exchange.as_dict()["primary"]["body"] == "[redacted]"


def test_a_record_har_file_that_is_not_a_har_is_refused_before_the_proxy_starts(capsys, tmp_path):
    """Appending would have replaced it; and every batch would have logged its pairs lost
    although their comparisons were stored."""
    from strangler.cli import main

    notes = tmp_path / "notes.har"
    notes.write_text("my notes, not JSON")
    routes = tmp_path / "routes.json"
    routes.write_text(
        json.dumps({"default_backend": "m", "backends": {"m": {"url": "http://127.0.0.1:9"}}})
    )
    store = str(tmp_path / "p.sqlite3")
    code = main(["proxy", "--config", str(routes), "--listen", "127.0.0.1:0",
                 "--parity-store", store, "--record-har", str(notes)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"--record-har {notes}: not a HAR file to append to" in err
    assert notes.read_text() == "my notes, not JSON"


def test_a_har_that_cannot_be_appended_costs_the_recording_not_the_comparisons(tmp_path, caplog):
    """The file replaced under a running proxy: the batch is stored, the error says what
    was not written."""
    import time

    from strangler.parity import open_store, summary
    from strangler.parity.worker import PairConsumer

    har = tmp_path / "shadow.har"
    har.write_text("[]")
    consumer = PairConsumer(str(tmp_path / "parity.sqlite3"), str(har))
    side = {"status": 200, "headers": [(b"content-type", b"application/json")], "body": b"{}",
            "size": 2, "latency_ms": 1.0, "error": ""}  # fmt: skip
    pair = {"route": "products", "method": "GET", "path": b"/api/v1/products/1", "at": time.time(),
            "request_headers": [], "request_body": b"", "primary": side, "candidate": side,
            "secondary": None, "record": True, "redact": ()}  # fmt: skip
    consumer([pair])
    consumer.close()
    assert "1 recorded exchanges not written" in caplog.text and "not a HAR file" in caplog.text
    assert har.read_text() == "[]"
    store = open_store(str(tmp_path / "parity.sqlite3"))
    try:
        assert summary(store, "products", since=0).samples == 1
    finally:
        store.close()


def test_appends_write_the_new_entries_only_and_a_torn_tail_is_mended(tmp_path):
    """A long recording: each batch is written over the file's closing bytes (same file,
    its earlier bytes untouched), not the whole file again; an append cut off by a crash
    (the process killed mid-write) is cut back to the last complete one on the next."""
    path = tmp_path / "shadow.har"
    append_har(path, [{"n": 0}])
    append_har(path, [{"n": 1}, {"n": 2}])
    inode, head = path.stat().st_ino, path.read_bytes()[:-3]
    append_har(path, [{"n": 3}])
    assert path.stat().st_ino == inode and path.read_bytes().startswith(head)
    assert [e["n"] for e in json.loads(path.read_text())["log"]["entries"]] == [0, 1, 2, 3]

    whole = path.read_bytes()
    path.write_bytes(whole[:-3] + b', {"n": 4, "bo')  # killed while writing entry 4
    append_har(path, [{"n": 5}])
    assert [e["n"] for e in json.loads(path.read_text())["log"]["entries"]] == [0, 1, 2, 3, 5]


def test_a_har_of_another_tool_is_appended_to_whole(tmp_path):
    path = tmp_path / "browser.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "Firefox"},
                                        "pages": [], "entries": [{"n": 0}]}}))  # fmt: skip
    append_har(path, [{"n": 1}])
    doc = json.loads(path.read_text())
    assert doc["log"]["creator"] == {"name": "Firefox"} and doc["log"]["pages"] == []
    assert [e["n"] for e in doc["log"]["entries"]] == [0, 1]


def test_a_recorded_status_that_is_no_number_is_no_recorded_answer():
    """JSON `true` is a Python int subclass: it was read as a recorded status 1, which a
    replayed write's answer was then compared with."""
    from strangler.parity.har import parse_har

    document = har([("POST", "http://shop.example.com/api/v1/orders")])
    document["log"]["entries"][0]["response"]["status"] = True
    (request,) = parse_har(json.dumps(document), "t.har")
    assert request.recorded is None
