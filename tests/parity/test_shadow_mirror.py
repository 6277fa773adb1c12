"""The mirror process beside a proxy worker, tried as an operator would break it: the proxy
killed under it, the mirror frozen, the proxy stopped with pairs still on their way."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.parity import test_shadow_proxy
from tests.parity.shop_servers import Behaviour
from tests.parity.test_shadow_proxy import mirror_pid, shadow_metric, wait_for_samples

shadowing = test_shadow_proxy.shadowing  # the fixture: a proxy shadowing onto a candidate

pytestmark = pytest.mark.slow  # real proxy processes, a mirror process each


def gone(pid: int, seconds: float) -> bool:
    """Whether `pid` has exited (or is a zombie nobody reaped) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_proxy_killed_with_sigkill_leaves_no_mirror_behind(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour())
    httpx.get(f"{proxy.url}/api/v1/products/1", headers={"X-User-ID": "a"}, timeout=10)
    wait_for_samples(tmp_path, 1)
    mirror = mirror_pid(proxy)
    proxy.proc.kill()
    proxy.proc.wait(timeout=10)
    # Its pipe from the proxy reads EOF: it finishes what it holds and exits by itself.
    assert gone(mirror, 15)


def test_a_frozen_mirror_never_slows_clients_and_what_waits_for_it_is_bounded(shadowing, tmp_path):
    """~217 KB answers captured whole (max_body_bytes 1 MiB): the 8 MiB the worker lets wait
    in the pipe for a mirror that stopped reading hold a few dozen; the rest are dropped and
    counted, and every client gets its answer at once."""
    proxy = shadowing(Behaviour(padding=20_000), Behaviour(padding=20_000),
                      max_body_bytes=1_048_576, noise_percent=0)  # fmt: skip
    mirror = mirror_pid(proxy)
    os.kill(mirror, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            for n in range(120):
                started = time.monotonic()
                answer = client.get(f"/api/v1/products?page={n}", headers={"X-User-ID": f"u{n}"})
                assert answer.status_code == 200 and len(answer.content) > 200_000
                assert time.monotonic() - started < 5
        dropped = shadow_metric(proxy, "dropped_hand_off", 1)
        assert 0 < dropped < 120
    finally:
        os.kill(mirror, signal.SIGCONT)
    # Once it reads again, what waited is compared: together with the dropped ones, all 120.
    result = wait_for_samples(tmp_path, 120 - dropped)
    assert result.samples + result.skipped == 120 - dropped


def test_pairs_on_their_way_when_the_proxy_stops_are_still_compared(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour(sleep=0.5), timeout=10)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for n in range(20):
            assert client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"s{n}"}
                              ).status_code == 200  # fmt: skip
    # Most shadow calls are still waiting on the slow candidate when the proxy is told to stop.
    assert proxy.stop() == 0
    result = wait_for_samples(tmp_path, 20)
    assert result.samples == 20


def test_each_worker_has_its_mirror_and_the_counts_add_up(shadowing, tmp_path):
    proxy = shadowing(Behaviour(), Behaviour(), "--workers", "2")
    for n in range(40):  # a connection each: the kernel spreads them over both workers
        assert httpx.get(f"{proxy.url}/api/v1/products/{n}", headers={"X-User-ID": f"w{n}"},
                         timeout=10).status_code == 200  # fmt: skip
    assert wait_for_samples(tmp_path, 40).samples == 40
    workers = Path(f"/proc/{proxy.proc.pid}/task/{proxy.proc.pid}/children").read_text().split()
    mirrors = [
        pid
        for worker in workers
        for pid in Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(workers) == 2 and len(mirrors) == 2
    # Worker 0's /metrics adds the other's snapshot (at most ~1 s old) to its own.
    assert shadow_metric(proxy, "sent", 40) == 40


def test_a_frozen_mirror_does_not_hold_the_proxys_shutdown_and_is_not_left_behind(
    shadowing, tmp_path
):
    proxy = shadowing(Behaviour(), Behaviour(), timeout=1)
    httpx.get(f"{proxy.url}/api/v1/products/1", headers={"X-User-ID": "a"}, timeout=10)
    wait_for_samples(tmp_path, 1)
    mirror = mirror_pid(proxy)
    os.kill(mirror, signal.SIGSTOP)
    started = time.monotonic()
    proxy.stop()  # waits for the mirror two shadow timeouts and 5 s, then kills it
    assert time.monotonic() - started < 12
    assert gone(mirror, 5)


def test_a_pair_consumer_that_cannot_travel_to_the_mirror_is_refused_at_once():
    from strangler.proxy.metrics import ProxyMetrics
    from strangler.proxy.shadow import MirrorProcess

    with pytest.raises(TypeError, match="must pickle"):
        MirrorProcess(lambda worker: print, 0, ProxyMetrics())


def test_a_parity_metrics_port_in_use_costs_the_metrics_for_a_while_never_the_comparisons(
    shadowing, tmp_path
):
    """As when a killed proxy worker's mirror still drains on PORT+N while the restarted
    worker's new mirror starts: that one waits for the port, it does not die for it (and
    is not started again and again, every pair written to it lost)."""
    import socket

    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        proxy = shadowing(Behaviour(), Behaviour(), "--parity-metrics", f"127.0.0.1:{port}")
        mirror = mirror_pid(proxy)
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            for n in range(5):
                assert client.get(f"/api/v1/products/{n}", headers={"X-User-ID": f"p{n}"}
                                  ).status_code == 200  # fmt: skip
                time.sleep(0.3)
        assert wait_for_samples(tmp_path, 5).samples == 5
        assert mirror_pid(proxy) == mirror  # the same process all along
    finally:
        busy.close()
    # Once the port is free, the mirror serves its counts there.
    for _ in range(100):
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise AssertionError("the mirror never served its /metrics")
    assert 'outcome="different",route="products"} 5.0' in text
    assert "shadow mirror process" not in proxy.stderr_so_far()  # never gone


def test_pairs_a_mirror_is_stopped_with_at_shutdown_are_told_in_the_log(shadowing, tmp_path):
    """Its consumer stuck on a store another process locked: at SIGTERM the worker waits its
    while, then kills the mirror; the pairs that cost is told (no /metrics outlives it), not
    only that the mirror did not stop."""
    import sqlite3

    proxy = shadowing(Behaviour(), Behaviour(), timeout=1)
    httpx.get(f"{proxy.url}/api/v1/products/1", headers={"X-User-ID": "a"}, timeout=10)
    wait_for_samples(tmp_path, 1)
    lock = sqlite3.connect(tmp_path / "parity.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the consumer waits for it (30 s)
    try:
        for n in range(2, 5):
            httpx.get(f"{proxy.url}/api/v1/products/{n}", headers={"X-User-ID": "a"}, timeout=10)
        assert shadow_metric(proxy, "sent", 4) == 4
        time.sleep(0.5)  # the hand-off took them: the consumer is stuck on the lock
        proxy.stop()  # two shadow timeouts and 5 s, then the mirror is killed
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "3 pairs not finished, lost" in proxy.stderr


def _worker_serving(port: int, workers: list[str]) -> str:
    """Which of the proxy's workers listens on `port` (its socket's inode among its fds)."""
    inodes = {
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())[3] == "0A" and int(fields[1].split(":")[1], 16) == port
    }
    for worker in workers:
        for fd in Path(f"/proc/{worker}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes:
                    return worker
    raise AssertionError(f"no worker listens on {port}")


@pytest.mark.parametrize("killed", ["the other worker", "the worker serving /metrics"])
def test_a_restarted_worker_carries_on_its_predecessors_counts(shadowing, tmp_path, killed):
    """--workers 2, one worker killed: its counts were in its snapshot, which its successor
    overwrote with its own (and the worker serving /metrics wrote none), so `sent` on /metrics
    went down (Prometheus reads a counter going down as a reset: rate() and increase() go
    wrong)."""
    proxy = shadowing(Behaviour(), Behaviour(), "--workers", "2")
    for n in range(40):  # a connection each: the kernel spreads them over both workers
        assert httpx.get(f"{proxy.url}/api/v1/products/{n}", headers={"X-User-ID": f"r{n}"},
                         timeout=10).status_code == 200  # fmt: skip
    assert wait_for_samples(tmp_path, 40).samples == 40
    assert shadow_metric(proxy, "sent", 40) == 40
    time.sleep(1.5)  # each worker's snapshot (every second) holds all of its own
    children = Path(f"/proc/{proxy.proc.pid}/task/{proxy.proc.pid}/children")
    workers = children.read_text().split()
    serving = _worker_serving(int(proxy.admin_url.rsplit(":", 1)[1]), workers)
    (chosen,) = [w for w in workers if (w == serving) == (killed != "the other worker")]
    os.kill(int(chosen), signal.SIGKILL)
    for _ in range(200):  # started again by the supervisor
        if len(set(children.read_text().split()) - {chosen}) == 2:
            break
        time.sleep(0.05)
    time.sleep(2.5)  # its successor serves, and has written its own snapshot
    assert shadow_metric(proxy, "sent", 40) == 40


def test_a_stopped_mirror_whose_proxy_is_killed_is_not_left_behind(shadowing, tmp_path):
    """SIGSTOP on the mirror, then kill -9 on the proxy: the kernel continues the orphan
    (PR_SET_PDEATHSIG = SIGCONT), which reads its pipe's EOF and exits."""
    proxy = shadowing(Behaviour(), Behaviour())
    httpx.get(f"{proxy.url}/api/v1/products/1", headers={"X-User-ID": "a"}, timeout=10)
    wait_for_samples(tmp_path, 1)
    mirror = mirror_pid(proxy)
    os.kill(mirror, signal.SIGSTOP)
    try:
        proxy.proc.kill()
        proxy.proc.wait(timeout=10)
        assert gone(mirror, 15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(mirror, signal.SIGKILL)
