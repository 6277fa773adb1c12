"""A PostgreSQL parity store that goes away under its writers: a server restarted (every
connection cut), or gone for a while (new connections refused). Real servers, real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest

from strangler.parity.store import ParityStore, StoreError
from strangler.parity.summary import summary
from strangler.parity.worker import PairConsumer
from tests.control.conftest import ADMIN_DSN
from tests.parity.shop_servers import Behaviour, har, serve
from tests.parity.test_replay import run

pytestmark = pytest.mark.postgres
AT = 1_800_000_000.0


def cut(pg_url: str, refuse: bool = False) -> None:
    """End every connection to the store's database, as a server restart does; with
    `refuse`, new ones are refused too (the database gone until `back`)."""
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        if refuse:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )


def back(pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def samples(pg_url: str, route: str, since: float) -> int:
    store = ParityStore(pg_url)
    try:
        return summary(store, route, since).samples
    finally:
        store.close()


def pair(n: int) -> dict[str, Any]:
    """A pair as a proxy's mirror hands it over, both sides answering the same."""
    side = {"status": 200, "headers": [(b"content-type", b"application/json")],
            "body": b'{"id": 1}', "size": 9, "latency_ms": 1.0, "error": ""}  # fmt: skip
    return {"route": "products", "method": "GET", "path": f"/api/v1/products/{n}",
            "at": AT + n, "request_headers": [], "request_body": b"", "primary": side,
            "candidate": side, "secondary": None, "record": False, "redact": []}  # fmt: skip


def test_the_mirrors_consumer_writes_again_once_postgresql_is_back(pg_url):
    """PostgreSQL gone for a while under a proxy's mirror: the consumer's lost connection
    was kept for good, and the lock a failed transaction left held made the next batch
    (and the mirror's shutdown) wait forever, every later pair dropped. Now the batches
    while it is gone are lost (counted, the error naming the store) and the next ones are
    written."""
    consumer = PairConsumer(pg_url)
    outcomes: list[str] = []

    def batches() -> None:
        consumer([pair(0)])
        cut(pg_url, refuse=True)
        for n in (1, 2):
            try:
                consumer([pair(n)])
                outcomes.append("written")
            except StoreError as error:
                outcomes.append("lost" if f"parity store {pg_url}" in str(error) else repr(error))
            except Exception as error:  # what it raised before
                outcomes.append(repr(error))
        back(pg_url)
        for n in (3, 4):
            consumer([pair(n)])
            outcomes.append("written")
        consumer.close()

    writer = threading.Thread(target=batches, daemon=True)
    try:
        writer.start()
        writer.join(timeout=60)  # a guard against the wait forever, not a measure
        assert not writer.is_alive(), f"the consumer hangs after {outcomes}"
    finally:
        back(pg_url)
    assert outcomes == ["lost", "lost", "written", "written"]
    assert samples(pg_url, "products", AT - 60) == 3


def test_a_replay_keeps_its_comparisons_when_postgresql_restarted_meanwhile(
    capsys, tmp_path, pg_url
):
    """The replay writes its comparisons when it is done, on the connection it opened first:
    a PostgreSQL restarted meanwhile (or a pooler cutting idle connections) made it end
    with psycopg's traceback, every comparison lost. Nothing had reached the server, so the
    write now goes over a new connection."""
    code, out, err = replay_cutting_the_store(capsys, tmp_path, pg_url, refuse=False)
    assert code == 0, err
    assert json.loads(out)["compared"] == 3
    assert samples(pg_url, "products", 0) == 3


def test_a_replay_whose_postgresql_is_gone_says_so_in_one_line_exit_2(capsys, tmp_path, pg_url):
    """The same with the database gone for good: one line naming the store and what was lost,
    exit 2, instead of a traceback."""
    try:
        code, out, err = replay_cutting_the_store(capsys, tmp_path, pg_url, refuse=True)
    finally:
        back(pg_url)
    assert code == 2 and not out and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert f"3 comparisons not kept: parity store {pg_url}: " in err


def replay_cutting_the_store(
    capsys: Any, tmp_path: Any, pg_url: str, refuse: bool
) -> tuple[int, str, str]:
    """Replay three requests, cutting the store's connections once the store is open (the
    first request has arrived) and before any comparison is written."""
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(har([("GET", f"http://shop/api/v1/products/{n}") for n in "123"])))
    held = Behaviour(hold=threading.Event())

    def cut_then_answer() -> None:
        if held.arrived.wait(timeout=30):
            cut(pg_url, refuse)
        assert held.hold is not None
        held.hold.set()

    cutter = threading.Thread(target=cut_then_answer, daemon=True)
    with serve(Behaviour()) as primary, serve(held) as candidate:
        cutter.start()
        result = run(capsys, "parity", "replay", str(path), "--primary", primary,
                     "--candidate", candidate, "--route", "products", "--store", pg_url,
                     "--json")  # fmt: skip
    cutter.join()
    return result


def test_a_store_gone_mid_replay_says_what_it_kept_and_where_to_go_on(tmp_path, pg_url):
    """The replay writes as it goes; when the store goes away after some writes, the error
    said only what was lost, and a user could not tell where to go on."""
    from tests.parity.test_replay_hostile import Held, jittered, raw_server

    path = tmp_path / "traffic.har"
    pages = [("GET", f"https://shop.example.com/api/v1/products?page={n}") for n in range(200)]
    path.write_text(json.dumps(har(pages)))
    held = Held(free=50)
    with raw_server(jittered) as primary, raw_server(held) as candidate:
        replaying = subprocess.Popen(
            [sys.executable, "-m", "strangler", "parity", "replay", str(path), "--route",
             "products", "--store", pg_url, "--concurrency", "8", "--keep-every", "0.2",
             "--primary", primary, "--candidate", candidate],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while held.answered < held.free + 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the entries before the held ones are written
        try:
            cut(pg_url, refuse=True)
            held.release.set()  # the rest are compared; writing them fails
            _, err = replaying.communicate(timeout=60)
        finally:
            back(pg_url)
    assert replaying.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert "comparisons not kept" in last and "were kept before: go on with --start" in last
    resume = int(last.rsplit("go on with --start ", 1)[1].split()[0])
    assert 0 < resume <= 58 and samples(pg_url, "products", 0) == resume, err
