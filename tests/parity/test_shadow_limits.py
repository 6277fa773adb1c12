"""Through the real proxy process: answers the comparison cannot judge (beyond the capture
cap, nested too deep) are counted as not compared, never as matches, and cost no other pair."""

from __future__ import annotations

import httpx
import pytest

from tests.parity import test_shadow_proxy
from tests.parity.shop_servers import Behaviour
from tests.parity.test_shadow_proxy import mirror_pid, shadow_metric, wait_for_samples

shadowing = test_shadow_proxy.shadowing  # the fixture: a proxy shadowing onto a candidate

pytestmark = pytest.mark.slow  # real proxy processes, a worker process each


def test_answers_beyond_the_capture_cap_are_counted_never_compared_as_equal(shadowing, tmp_path):
    """~217 KB pages with every price different: cut at 64 KiB both sides look alike."""
    from strangler.cli import main

    proxy = shadowing(Behaviour(padding=20_000), Behaviour(padding=20_000, price_bug=1.0),
                      noise_percent=100)  # fmt: skip
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for n in range(30):
            answer = client.get(f"/api/v1/products?page={n}", headers={"X-User-ID": f"u{n}"})
            assert answer.status_code == 200 and len(answer.content) > 200_000
    result = wait_for_samples(tmp_path, 30)
    assert (result.samples, result.skipped) == (0, 30)
    assert shadow_metric(proxy, "response_too_large", 30) == 30
    code = main(["parity", "report", "--route", "products", "--store",
                 str(tmp_path / "parity.sqlite3"), "--since", "1h", "--gate", "99.5",
                 "--min-samples", "30"])  # fmt: skip
    assert code == 1


def test_a_deeply_nested_answer_is_skipped_and_its_batch_still_recorded(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour())
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        # One batch (the hand-off drains every 0.25 s): the hostile answer among good ones.
        for n in range(5):
            query = "&deep=1" if n == 2 else ""
            assert client.get(f"/api/v1/products?page={n}{query}",
                              headers={"X-User-ID": f"u{n}"}).status_code == 200  # fmt: skip
    result = wait_for_samples(tmp_path, 5)
    assert (result.samples, result.skipped) == (4, 1)
    assert result.endpoints[0].skipped == (("too_deep", 1),)
    # The worker is alive and keeps comparing.
    httpx.get(f"{proxy.url}/api/v1/products/7", headers={"X-User-ID": "z"}, timeout=10)
    assert wait_for_samples(tmp_path, 6).samples == 5


def kill_mirror_holding_three(proxy, client: httpx.Client, tmp_path, then=None) -> int:
    """One pair stored, then three the mirror holds (the store locked, so its consumer waits
    to write them) when it is killed with -9; `then(pid)` runs while the store is still
    locked. Returns the pid of the mirror killed last (the one `then` returns, if any)."""
    import os
    import signal
    import sqlite3
    import time

    client.get("/api/v1/products/1", headers={"X-User-ID": "a"})
    wait_for_samples(tmp_path, 1)
    killed = mirror_pid(proxy)
    lock = sqlite3.connect(tmp_path / "parity.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the mirror now waits to write what it is sent
    try:
        for n in range(2, 5):
            client.get(f"/api/v1/products/{n}", headers={"X-User-ID": "a"})
        time.sleep(1.5)  # a few hand-off rounds (0.25 s each): the three pairs are sent
        os.kill(killed, signal.SIGKILL)
        if then is not None:
            killed = then(killed)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    return killed


def test_pairs_a_killed_worker_held_are_counted_as_lost(shadowing, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = shadowing(Behaviour(), Behaviour(), "--parity-metrics", f"127.0.0.1:{port}")
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        worker = kill_mirror_holding_three(proxy, client, tmp_path)
        mirror_pid(proxy, other_than=worker)
        client.get("/api/v1/products/9", headers={"X-User-ID": "a"})
        assert wait_for_samples(tmp_path, 2).samples == 2  # a new worker, the three lost
    # Counted by the worker, which outlives its mirrors.
    assert shadow_metric(proxy, "lost", 3) == 3


def test_pairs_lost_with_mirrors_killed_one_after_another_stay_counted(shadowing, tmp_path):
    """A mirror killed again and again (an OOM killer, an operator): the count of what each
    took with it must outlive the next one too, so the worker keeps it. It was handed to
    the next mirror's consumer, and died with it: killed while starting, or before a scrape."""
    import os
    import signal
    import time

    def kill_the_next(first: int) -> int:
        second = mirror_pid(proxy, other_than=first)
        os.kill(second, signal.SIGKILL)  # still starting
        return second

    proxy = shadowing(Behaviour(), Behaviour())
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        second = kill_mirror_holding_three(proxy, client, tmp_path, then=kill_the_next)
        third = mirror_pid(proxy, other_than=second)
        client.get("/api/v1/products/9", headers={"X-User-ID": "a"})
        assert wait_for_samples(tmp_path, 2).samples == 2
        # The mirror tells its worker a batch is done right after storing it (and pruning,
        # on its first write); killed within those milliseconds, the stored pair would be
        # counted lost too. Stored is what the next assertions are about, not that window.
        time.sleep(0.5)
        os.kill(third, signal.SIGKILL)  # with whatever it counted
        mirror_pid(proxy, other_than=third)
    assert shadow_metric(proxy, "lost", 3) == 3
    time.sleep(0.3)
    assert shadow_metric(proxy, "lost", 3) == 3  # the stored one is not lost


def test_what_waits_for_the_mirror_is_bounded_within_one_write_window_too():
    """Exchanges handed over in the same 20 ms share one write: until it goes out they are
    in no pipe buffer, and count against the 8 MiB all the same (a burst of large answers
    was all kept, however many)."""
    import asyncio
    import functools
    import marshal

    from strangler.proxy.metrics import ProxyMetrics
    from strangler.proxy.shadow import MAX_UNSENT, MirrorProcess

    class Pipe:  # a mirror's pipe with nothing written to it yet
        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return True  # nothing is really written

    async def burst() -> list[bool]:
        mirror = MirrorProcess(functools.partial(print), 0, ProxyMetrics())
        mirror.transport = Pipe()  # type: ignore[assignment]
        data = marshal.dumps({"body": b"x" * (1024 * 1024)})
        return [mirror.offer("r", 1, None, data) for _ in range(32)]  # type: ignore[arg-type]

    accepted = asyncio.run(burst())
    assert accepted.count(True) <= MAX_UNSENT // (1024 * 1024) + 1
    assert accepted[:8] == [True] * 8


def test_a_hung_candidate_takes_its_own_routes_slots_never_another_routes(tmp_path):
    """`max_in_flight` is a route's setting: a candidate that hangs fills that route's slots
    and waiting places, and a route with a healthy candidate keeps shadowing on the same
    worker (every one of its pairs was dropped_in_flight behind the other's)."""
    import threading

    from tests.parity.shop_servers import serve
    from tests.proxy.helpers import ProxyProcess, write_json

    hold = threading.Event()
    servers = [serve(Behaviour()), serve(Behaviour(hold=hold)), serve(Behaviour())]
    monolith, hung, healthy = (s.__enter__() for s in servers)
    shadow = {"percent": 100, "noise_percent": 0, "max_in_flight": 3, "timeout": 30}
    table = {
        "default_backend": "monolith",
        "backends": {"monolith": {"url": monolith}, "catalog": {"url": hung},
                     "orders": {"url": healthy}},
        "routes": [
            {"id": "products", "prefix": "/api/v1/products", "monolith": "monolith",
             "service": "catalog", "weight": 0, "sticky": ["header:X-User-ID"],
             "shadow": shadow},
            {"id": "orders", "prefix": "/api/v1/orders", "monolith": "monolith",
             "service": "orders", "weight": 0, "sticky": ["header:X-User-ID"],
             "shadow": shadow},
        ],
    }  # fmt: skip
    config = write_json(tmp_path / "routes.json", table)
    proxy = ProxyProcess("--config", str(config),
                         extra=("--parity-store", str(tmp_path / "parity.sqlite3")))  # fmt: skip
    try:
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            for n in range(10):
                assert client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"p{n}"}
                                  ).status_code == 200  # fmt: skip
            assert shadow_metric(proxy, "dropped_in_flight", 4) == 4  # 3 in flight, 3 wait
            for n in range(5):
                assert client.get(f"/api/v1/orders/{n}", headers={"X-User-ID": f"o{n}"}
                                  ).status_code == 200  # fmt: skip
        assert wait_for_samples(tmp_path, 5, route="orders").samples == 5
        assert shadow_metric(proxy, "dropped_in_flight", 5) == 4  # the products' ones only
    finally:
        hold.set()
        proxy.stop()
        for s in servers:
            s.__exit__(None, None, None)


def test_the_pairs_waiting_for_a_stuck_consumer_are_bounded_in_bytes(shadowing, tmp_path):
    """~217 KB answers captured whole (max_body_bytes 1 MiB), the store locked by another
    process: 5,000 such pairs would hold 2 GB in the mirror. The hand-off holds at most 64 MiB
    of bodies; the rest is dropped and counted, and the rest compared once the lock goes."""
    import concurrent.futures
    import sqlite3
    import time

    proxy = shadowing(Behaviour(padding=20_000), Behaviour(padding=20_000),
                      max_body_bytes=1_048_576, noise_percent=0)  # fmt: skip
    httpx.get(f"{proxy.url}/api/v1/products?page=0", headers={"X-User-ID": "u"}, timeout=10)
    wait_for_samples(tmp_path, 1)
    lock = sqlite3.connect(tmp_path / "parity.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the consumer waits for it (up to 30 s)

    def get(n: int) -> int:
        return httpx.get(f"{proxy.url}/api/v1/products?page={n}",
                         headers={"X-User-ID": f"u{n}"}, timeout=10).status_code  # fmt: skip

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert set(pool.map(get, range(1, 301))) == {200}
        assert shadow_metric(proxy, "sent", 301) == 301  # every call settled
        time.sleep(0.3)  # the last counts reported (every 0.1 s)
        # 64 MiB hold ~150 of them (two answers each), the consumer's batch included.
        dropped = shadow_metric(proxy, "dropped_hand_off", 0)
        assert 120 <= dropped < 200
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    result = wait_for_samples(tmp_path, 301 - dropped)
    assert result.samples + result.skipped + dropped == 301


def test_a_candidate_that_never_accepts_fails_its_call_at_the_shadow_timeout(tmp_path):
    """A candidate whose listen backlog is full: the SYN goes unanswered. The shadow call
    fails at its own `timeout` (1 s), not at the backend's connect_timeout (10 s here)
    that the primary path uses, holding the route's slot ten times as long."""
    import socket
    import time

    from tests.parity.shop_servers import serve
    from tests.parity.test_shadow_proxy import routes
    from tests.proxy.helpers import ProxyProcess, write_json

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)  # never accepted: once the queue is full, SYNs are dropped
    port = hole.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    with serve(Behaviour()) as monolith:
        table = routes(monolith, f"http://127.0.0.1:{port}", noise_percent=0, timeout=1)
        table["backends"]["catalog"]["connect_timeout"] = 10
        config = write_json(tmp_path / "routes.json", table)
        store = ("--parity-store", str(tmp_path / "parity.sqlite3"))
        proxy = ProxyProcess("--config", str(config), extra=store)
        try:
            answer = httpx.get(f"{proxy.url}/api/v1/products/1", headers={"X-User-ID": "a"},
                               timeout=10)  # fmt: skip
            assert answer.status_code == 200
            started = time.monotonic()
            assert shadow_metric(proxy, "candidate_failed", 1) == 1
            assert time.monotonic() - started < 3
            result = wait_for_samples(tmp_path, 1)
            assert "timeout" in str(result.endpoints[0].fields[0].example)
        finally:
            proxy.stop()
            hole.close()
            for filler in fillers:
                filler.close()
