"""`strangler parity replay` against hostile input: a browser's HTTP/2 export, a candidate that
drips its answer, one whose answer never ends. Real servers on real sockets."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from strangler.parity import open_store, summary
from tests.parity.shop_servers import Behaviour, har, serve
from tests.parity.test_replay import replay, run

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A socket server calling `answer` on each connection after reading its request."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                answer(conn)
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def drip(conn: socket.socket) -> None:
    """Promise 1000 bytes, then send one every 0.5 s for 12 s: every read is quick."""
    conn.sendall(HEAD + b"content-length: 1000\r\n\r\n")
    for _ in range(24):
        conn.sendall(b" ")
        time.sleep(0.5)


def endless(conn: socket.socket) -> None:
    """A chunked answer of 40 MiB (standing in for one that never ends)."""
    conn.sendall(HEAD + b"transfer-encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(640):
        conn.sendall(b"10000\r\n" + chunk + b"\r\n")
    conn.sendall(b"0\r\n\r\n")


def test_a_browsers_http2_export_is_replayed_without_its_pseudo_headers(capsys, tmp_path):
    """Chrome's HAR of an HTTP/2 site lists :authority, :method, :path and :scheme."""
    document = har([("GET", "https://shop.example.com/api/v1/products?page=1")])
    request = document["log"]["entries"][0]["request"]
    request["httpVersion"] = "h2"
    request["headers"] = [
        {"name": ":authority", "value": "shop.example.com"},
        {"name": ":method", "value": "GET"},
        {"name": ":path", "value": "/api/v1/products?page=1"},
        {"name": ":scheme", "value": "https"},
        {"name": "accept", "value": "application/json"},
    ]
    path = tmp_path / "h2.har"
    path.write_text(json.dumps(document))
    monolith = Behaviour()
    with serve(monolith) as primary, serve(Behaviour()) as candidate:
        code, out, _ = run(capsys, "parity", "replay", str(path), "--primary", primary,
                           "--candidate", candidate, "--store",
                           str(tmp_path / "p.sqlite3"))  # fmt: skip
    assert code == 0, out
    assert "1 of 1 requests compared" in out
    assert {h.get("Host") for _, _, h in monolith.seen} == {"shop.example.com"}
    assert not [k for _, _, h in monolith.seen for k in h if k.startswith(":")]


def test_a_candidate_dripping_its_answer_fails_within_the_timeout(capsys, tmp_path):
    """--timeout bounds the whole request, not each read: a byte every 0.5 s never hangs it."""
    with serve(Behaviour()) as primary, raw_server(drip) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        started = time.monotonic()
        requests = [("GET", "http://shop.example.com/api/v1/products?page=1")]
        code, out, _ = replay(shop, capsys, tmp_path, requests, "--timeout", "1")
        elapsed = time.monotonic() - started
    assert elapsed < 6, f"the replay took {elapsed:.1f} s with --timeout 1"
    assert code == 0 and "1 x candidate: timeout after 1.0 s" in out


def test_an_answer_beyond_the_cap_is_not_compared_and_not_held_whole(capsys, tmp_path):
    """A candidate streaming 40 MiB is read up to the cap and stored as not compared."""
    with serve(Behaviour()) as primary, raw_server(endless) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        requests = [("GET", "http://shop.example.com/api/v1/products?page=1")]
        code, out, err = replay(shop, capsys, tmp_path, requests)
    assert "Traceback" not in err
    assert code == 1 and "skipped: 1 not compared (body_too_large)" in out


def test_deeply_nested_compare_and_reconcile_files_are_one_line_exit_2(capsys, tmp_path):
    """Nesting beyond the parsers' recursion limit is bad input, not a traceback."""
    compare = tmp_path / "compare.toml"
    compare.write_text("ignore = " + "[" * 100_000 + "]" * 100_000 + "\n")
    requests = tmp_path / "t.har"
    requests.write_text(json.dumps(har([("GET", "http://shop.example.com/api/v1/products")])))
    store = str(tmp_path / "p.sqlite3")
    with serve(Behaviour()) as primary:
        code, _, err = run(capsys, "parity", "replay", str(requests), "--primary", primary,
                           "--candidate", "http://127.0.0.1:9", "--store", store,
                           "--compare", str(compare))  # fmt: skip
    assert code == 2 and f"--compare {compare}: nested too deeply" in err
    assert len(err.strip().splitlines()) == 1
    reconcile = tmp_path / "reconcile.json"
    reconcile.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "parity", "record-data", "--route", "products", str(reconcile),
                       "--store", store)  # fmt: skip
    assert code == 2 and f"{reconcile}: not JSON (nested too deeply)" in err
    assert len(err.strip().splitlines()) == 1


def test_prune_takes_a_finite_number_of_days(capsys, tmp_path):
    """nan or inf days would reach the store's integer window arithmetic."""
    store = str(tmp_path / "p.sqlite3")
    for days in ("nan", "inf", "-1"):
        code, _, err = run(capsys, "parity", "prune", "--store", store, "--retention-days", days)
        assert code == 2 and f"--retention-days {days}: a number of days >= 0" in err
    assert run(capsys, "parity", "prune", "--store", store, "--retention-days", "0")[0] == 0


def test_the_candidate_as_secondary_is_refused(capsys, tmp_path):
    """Noise read from the candidate would cancel every real difference it has (as the route
    table refuses with route.E041)."""
    requests = [("GET", f"http://shop.example.com/api/v1/products?page={n}") for n in range(3)]
    monolith = Behaviour()
    with serve(monolith) as primary, serve(Behaviour(price_bug=0.3)) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        code, _, err = replay(shop, capsys, tmp_path, requests, "--secondary", candidate + "/")
    assert code == 2 and "--secondary" in err and "is the --candidate" in err
    assert len(err.strip().splitlines()) == 1 and not monolith.seen


def test_a_compare_file_ignoring_every_field_is_refused(capsys, tmp_path):
    """`ignore = ["**"]` would make parity 100% by construction: route.E048, nothing sent or
    recorded; a glob naming fields (`**.updated_at`) still compares the rest."""
    requests = tmp_path / "t.har"
    requests.write_text(json.dumps(har([("GET", "http://shop.example.com/api/v1/products/1")])))
    compare = tmp_path / "compare.toml"
    compare.write_text('ignore = ["**"]\n')
    store = tmp_path / "p.sqlite3"
    monolith = Behaviour()
    with serve(monolith) as primary, serve(Behaviour(price_bug=1.0)) as candidate:
        argv = ["parity", "replay", str(requests), "--primary", primary, "--candidate",
                candidate, "--store", str(store), "--compare", str(compare)]  # fmt: skip
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert f"route.E048 {compare}.ignore: '**' is wildcards alone" in err
        assert not store.exists() and not monolith.seen
        compare.write_text('ignore = ["**.updated_at", "request_id", "generated_at"]\n')
        assert run(capsys, *argv)[0] == 0
    code, out, _ = run(capsys, "parity", "report", "--store", str(store), "--json")
    (route,) = json.loads(out)["routes"]
    assert [f["path"] for e in route["endpoints"] for f in e["fields"]] == ["price"]


def replay_refused(
    document: dict, capsys, tmp_path: Path, allow_writes: bool = False
) -> tuple[Path, str]:
    """Replay a HAR `document` that must be refused: exit 2, one line on stderr, nothing sent
    to the primary and no store written. Its path, and that line."""
    path = tmp_path / "t.har"
    path.write_text(json.dumps(document))
    store = tmp_path / "p.sqlite3"
    monolith = Behaviour()
    with serve(monolith) as primary, serve(Behaviour()) as candidate:
        writes = ("--allow-writes", candidate) if allow_writes else ()
        code, _, err = run(capsys, "parity", "replay", str(path), "--primary", primary,
                           "--candidate", candidate, "--store", str(store), *writes)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not monolith.seen and not store.exists()
    return path, err


@pytest.mark.parametrize(("value", "shown"), [(None, "null"), (1, "1"), ("no key", "missing")])
def test_a_header_value_that_is_not_a_string_is_an_error_naming_entry_and_header(
    value, shown, capsys, tmp_path
):
    """A HAR header `"value": null` was sent as the text "None" (and one with no value as ""):
    bad input, exit 2, with the entry and the header named, nothing sent or recorded."""
    document = har([("GET", f"http://shop.example.com/api/v1/products/{n}") for n in (1, 2)])
    headers = document["log"]["entries"][1]["request"]["headers"]
    headers.append(
        {"name": "X-Tenant"} if shown == "missing" else {"name": "X-Tenant", "value": value}
    )
    path, err = replay_refused(document, capsys, tmp_path)
    assert (
        f"{path}: log.entries[1].request.headers[1] (X-Tenant): value is {shown}, not a string"
    ) in err


def test_a_recorded_header_past_ascii_is_sent_back_byte_for_byte(capsys, tmp_path):
    """The proxy's recorder reads header bytes as Latin-1 text (a UTF-8 "Zoë" is "ZoÃ«" in
    the HAR); the replay sent headers as ASCII and ended in a UnicodeEncodeError traceback
    at the first such request, every comparison of the run lost. Now each character goes
    back as the byte it was read from."""
    from strangler.parity.har import har_document, har_entry
    from strangler.parity.worker import exchange_from_pair

    sent = "Zoë".encode()
    side = {"status": 200, "headers": [(b"content-type", b"application/json")],
            "body": b"{}", "latency_ms": 1.0}  # fmt: skip
    recorded = {"route": "products", "method": "GET", "path": b"/api/v1/products/1",
                "at": time.time(), "request_headers": [(b"Host", b"shop.example.com"),
                (b"X-Customer", sent)], "primary": side, "candidate": side}  # fmt: skip
    path = tmp_path / "t.har"
    path.write_text(json.dumps(har_document([har_entry(exchange_from_pair(recorded))])))
    monolith, service = Behaviour(), Behaviour()
    with serve(monolith) as primary, serve(service) as candidate:
        code, out, err = run(capsys, "parity", "replay", str(path), "--primary", primary,
                             "--candidate", candidate, "--store", str(tmp_path / "p.sqlite3"),
                             "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["compared"] == 1
    # The primary twice (its answer, then the noise call) and the candidate once; http.server
    # reads header bytes as Latin-1 too.
    seen = [h["X-Customer"].encode("latin-1") for s in (monolith, service) for _, _, h in s.seen]
    assert seen == [sent] * 3


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"headers": [{"name": "X-City", "value": "東京"}]},
         "request.headers[0] (X-City): '東' is not a byte"),
        ({"url": "http://shop.example.com/api/v1/products/1\x00"},
         r"request.url: '\x00' at position 18 of the path is not allowed in a request line"),
        ({"url": "http://shop.example.com/api/v1/products/\ud800"},
         r"request.url: '\ud800' at position 17 of the path is not allowed"),
        ({"method": "POST", "postData": {"text": "\ud800"}},
         r"request.postData.text: '\ud800' at position 0 is half a UTF-16 pair"),
        ({"url": "http://shop.example.com/api/v1/products?q=" + "a" * 70000},
         "request.url: the path is 70,019 characters; one may be 64,512 at most"),
    ],
)  # fmt: skip
def test_a_request_no_client_could_send_is_named_before_anything_is_sent(
    entry, named, capsys, tmp_path
):
    """A header past U+00FF, a control character or a lone surrogate in the URL, a body that
    is no text: the replay sent the entries before it until one ended it in a traceback
    (UnicodeEncodeError, httpx.InvalidURL), every comparison lost. Now exit 2 naming the
    entry, nothing sent."""
    document = har([("GET", "http://shop.example.com/api/v1/products/2")] * 2)
    document["log"]["entries"][1]["request"].update(entry)
    path, err = replay_refused(document, capsys, tmp_path, allow_writes=True)
    assert "Traceback" not in err
    assert f"{path}: log.entries[1].{named}" in err


STOPS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]


def jittered(conn: socket.socket) -> None:
    """The same answer after 0-40 ms: with several in flight they finish out of order."""
    time.sleep(random.uniform(0, 0.04))
    body = b'{"ok": true}'
    conn.sendall(HEAD + b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


class Held:
    """`jittered` for the first `free` requests; the later ones wait for `release` (or 30 s),
    so a replay is still running when it is stopped however fast the machine."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.answered = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        with self.lock:
            self.answered += 1
            held = self.answered > self.free
        if held:
            self.release.wait(30)
        jittered(conn)


class HeldReplay:
    """A replay of 400 pages in a subprocess whose candidate holds every answer after the
    100th: stopped or killed there, it has compared some entries and not all."""

    def __init__(self, tmp_path: Path) -> None:
        path, self.store = tmp_path / "traffic.har", tmp_path / "parity.sqlite3"
        pages = [("GET", f"https://shop.example.com/api/v1/products?page={n}") for n in range(400)]
        path.write_text(json.dumps(har(pages)))
        self.command = [sys.executable, "-m", "strangler", "parity", "replay", str(path),
                        "--route", "products", "--store", str(self.store),
                        "--concurrency", "8"]  # fmt: skip
        self.held = Held(free=100)

    @contextmanager
    def running(self, *options: str) -> Iterator[subprocess.Popen]:
        """The replay, once 100 answered and every slot of --concurrency 8 is held."""
        with raw_server(jittered) as primary, raw_server(self.held) as candidate:
            self.targets = ["--primary", primary, "--candidate", candidate]
            replaying = subprocess.Popen(
                [*self.command, *self.targets, *options],
                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            deadline = time.monotonic() + 60
            # 108 arrived: no 109th comes while the 8 slots are held (but after 10 s, the
            # replay's timeout)
            while self.held.answered < self.held.free + 8 and time.monotonic() < deadline:
                time.sleep(0.05)
            yield replaying

    def go_on(self, resume: int) -> subprocess.CompletedProcess:
        """The rest of the replay, from entry `resume` (inside `running`)."""
        return subprocess.run(
            [*self.command, *self.targets, "--start", str(resume)], capture_output=True, text=True
        )


@pytest.mark.parametrize(("stop", "code", "said"), STOPS)
def test_a_stopped_replay_keeps_what_it_compared_and_goes_on_without_counting_twice(
    stop, code, said, tmp_path
):
    """SIGTERM (a CI job cancelled, `kill`) ended the replay at once: everything compared so
    far was lost, where Ctrl-C kept it. And a stopped replay could only be run again from the
    top, counting every kept entry twice towards the gate's minimum samples."""
    replay = HeldReplay(tmp_path)
    with replay.running() as replaying:
        replaying.send_signal(stop)
        time.sleep(0.5)
        replay.held.release.set()  # the ones in flight finish (or are abandoned) as a stop says
        _, err = replaying.communicate(timeout=30)
        assert replaying.returncode == code, err
        kept = int(err.rsplit(f"{said}: ", 1)[1].split(" comparisons kept")[0])
        resume = int(err.rsplit("go on with --start ", 1)[1].split()[0])
        stored = stored_pairs(replay.store)
        assert 0 < kept < 400 and stored == kept == resume, err
        rest = replay.go_on(resume)
    assert rest.returncode == 0, rest.stderr
    assert f"{400 - resume} of {400 - resume} requests compared" in rest.stdout
    assert stored_pairs(replay.store) == 400  # every entry once


def test_a_replay_killed_with_9_keeps_what_it_wrote_and_said_where_to_go_on(tmp_path):
    """Comparisons were written only when a replay ended or was stopped: kill -9 (the OOM
    killer, a lost CI runner) after an hour of replaying kept nothing."""
    replay = HeldReplay(tmp_path)
    with replay.running("--keep-every", "0.2") as replaying:
        time.sleep(0.5)  # a keeping interval has passed since the last entry finished
        replaying.kill()
        _, err = replaying.communicate(timeout=30)
        replay.held.release.set()
        resume = int(err.rsplit("go on with --start ", 1)[1].split(")")[0])
        assert 0 < resume < 400 and stored_pairs(replay.store) == resume, err
        rest = replay.go_on(resume)
    assert rest.returncode == 0, rest.stderr
    assert stored_pairs(replay.store) == 400  # every entry once


def stored_pairs(store: Path) -> int:
    opened = open_store(str(store))
    try:
        stored = summary(opened, "products", since=0)
    finally:
        opened.close()
    return stored.samples + stored.skipped


def test_a_start_past_the_last_entry_is_one_line_exit_2(capsys, tmp_path):
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(har([("GET", "https://shop.example.com/api/v1/products")])))
    code, _, err = run(capsys, "parity", "replay", str(path), "--primary", "http://127.0.0.1:1",
                       "--candidate", "http://127.0.0.1:2", "--start", "2",
                       "--store", str(tmp_path / "p.sqlite3"))  # fmt: skip
    assert code == 2
    assert f"--start 2: {path} has 1 entries" in err


def test_form_fields_recorded_as_params_are_sent_as_the_form(tmp_path):
    """HAR 1.2 lets a form body be recorded as `postData.params` instead of `text`: the
    replay sent such a POST with an empty body, reported nothing, and the report blamed the
    candidate for what the replay had dropped. Now the form is sent as recorded."""
    from strangler.parity.har import parse_har

    document = har([("POST", "http://shop.example.com/api/v1/basket")])
    document["log"]["entries"][0]["request"]["postData"] = {
        "mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "sku", "value": "A-1"}, {"name": "note", "value": "café & co"}],
    }
    (request,) = parse_har(json.dumps(document), "t.har")
    assert request.body == b"sku=A-1&note=caf%C3%A9+%26+co"


def test_a_multipart_body_recorded_as_params_only_is_refused(capsys, tmp_path):
    """Its bytes (boundary, file contents) are not in the HAR: sending something else would
    compare answers to another request."""
    document = har([("POST", "http://shop.example.com/api/v1/upload")] * 2)
    document["log"]["entries"][1]["request"]["postData"] = {
        "mimeType": "multipart/form-data; boundary=x",
        "params": [{"name": "file", "fileName": "a.csv", "contentType": "text/csv"}],
    }
    path, err = replay_refused(document, capsys, tmp_path, allow_writes=True)
    assert f"{path}: log.entries[1].request.postData.params: a multipart/form-data body" in err
