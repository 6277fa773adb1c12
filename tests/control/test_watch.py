"""A proxy's store watcher hears a PostgreSQL flip by LISTEN/NOTIFY, and polls when it cannot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from strangler.control import open_store
from strangler.control.store import RouteStore, Version
from strangler.control.watch import StoreWatcher
from tests.control.test_validate import base

pytestmark = pytest.mark.postgres
# The poll interval is only how long one LISTEN wait lasts; with this recheck, a watcher
# that hears no notice would not look again for an hour.
NEVER = 3600.0


@dataclass
class Followed:
    """An operator's store, and a proxy's watcher recording the versions it was handed."""

    operator: RouteStore
    watcher: StoreWatcher
    seen: list[int] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def on_version(self, version: Version) -> None:
        self.seen.append(version.number)
        self.arrived.set()


@pytest.fixture
def followed(pg_url) -> Iterator[Followed]:
    operator, proxy_store = open_store(pg_url), open_store(pg_url)
    operator.apply(base(weight=0), who="setup")
    f = Followed(operator, StoreWatcher(proxy_store, interval=0.25, recheck=NEVER))
    f.watcher.load()
    f.watcher.start(f.on_version)
    wait_until(lambda: f.watcher.listening)
    yield f
    f.watcher.stop()
    proxy_store.close()
    operator.close()


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_flip_reaches_a_listening_proxy_by_notification(followed):
    followed.operator.set_weight("products", 25, who="ana")
    assert followed.arrived.wait(10), "the flip never arrived"
    assert followed.seen == [2] and followed.watcher.listening


def test_a_watcher_whose_listening_connection_dies_still_gets_the_flip(followed, pg_url):
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND query LIKE 'LISTEN%%'",
            (database,),
        ).fetchall()
    assert killed == [(True,)]
    followed.operator.set_weight("products", 50, who="ana")  # sent while nobody listens
    wait_until(lambda: followed.seen == [2])
    wait_until(lambda: followed.watcher.listening)  # and it listens again
