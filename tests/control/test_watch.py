"""A proxy's store watcher hears a PostgreSQL flip by LISTEN/NOTIFY, and polls when it cannot."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from strangler.control import open_store
from strangler.control.watch import StoreWatcher
from tests.control.test_validate import base

pytestmark = pytest.mark.postgres
NEVER = 3600.0  # a safety-net recheck that cannot explain a flip arriving within seconds


def follow(watcher: StoreWatcher) -> tuple[list[int], threading.Event]:
    seen: list[int] = []
    arrived = threading.Event()

    def on_version(version):
        seen.append(version.number)
        arrived.set()

    watcher.load()
    watcher.start(on_version)
    return seen, arrived


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_flip_reaches_a_listening_proxy_by_notification(pg_url):
    operator, proxy_store = open_store(pg_url), open_store(pg_url)
    operator.apply(base(weight=0), who="setup")
    # The poll interval is only how long one LISTEN wait lasts; without a notice the
    # watcher would not look again for an hour.
    watcher = StoreWatcher(proxy_store, interval=0.25, recheck=NEVER)
    seen, arrived = follow(watcher)
    try:
        wait_until(lambda: watcher.listening)
        operator.set_weight("products", 25, who="ana")
        assert arrived.wait(10), "the flip never arrived"
        assert seen == [2] and watcher.listening
    finally:
        watcher.stop()
        proxy_store.close()
        operator.close()


def test_a_watcher_whose_listening_connection_dies_still_gets_the_flip(pg_url):
    operator, proxy_store = open_store(pg_url), open_store(pg_url)
    operator.apply(base(weight=0), who="setup")
    watcher = StoreWatcher(proxy_store, interval=0.25, recheck=NEVER)
    seen, _ = follow(watcher)
    try:
        wait_until(lambda: watcher.listening)
        database = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND query LIKE 'LISTEN%%'",
                (database,),
            ).fetchall()
        assert killed == [(True,)]
        operator.set_weight("products", 50, who="ana")  # sent while nobody listens
        wait_until(lambda: seen and seen[-1] == 2)
        wait_until(lambda: watcher.listening)  # and it listens again
    finally:
        watcher.stop()
        proxy_store.close()
        operator.close()
