"""Gates tried the way a hostile platform engineer would: readings that are stale, partial or
from before the bake, against the real proxy. A gate that passes on them would let the
runbook move traffic onto a broken service."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from strangler.control import open_store
from strangler.runbook.engine import Engine
from strangler.runbook.sources import Environment
from strangler.runbook.store import RunStore
from tests.proxy.helpers import table
from tests.runbook.conftest import Shoppers, Stack


class Service(ThreadingHTTPServer):
    """A real HTTP server in a thread: answers 200 until `failing` is set, then 500; its
    health path takes `health_s` to answer 200 and sets `failing` when it is asked."""

    daemon_threads = True

    def __init__(self, failing: threading.Event, health_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.health_s = health_s
        self.failing = failing
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Service

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.server.failing.set()
            time.sleep(self.server.health_s)
            status = 200
        else:
            status = 500 if self.server.failing.is_set() else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def services() -> Iterator[tuple[Service, Service]]:
    failing = threading.Event()  # set by the slow one's health check, failing the catalog
    catalog, slow = Service(failing), Service(failing, health_s=3.0)
    try:
        yield catalog, slow
    finally:
        catalog.stop()
        slow.stop()


SLOW_ROUND = """
name = "slow-round"

[[steps]]
id = "canary-50"
action = "set_weight"
route = "products"
weight = 50
gates = [
  { gate = "breaker_closed", route = "products" },
  { gate = "service_healthy", route = "reports" },
]
bake = 2
interval = 0.2
deadline = 20
on_fail = "rollback"
"""


def test_a_gate_read_before_the_bake_ended_does_not_pass_the_step(
    stack: Stack, services: tuple[Service, Service], tmp_path
):
    # The catalog starts failing as soon as the gates begin (the slow health check of
    # another route is asked): its breaker opens while that check takes 3 s. The breaker
    # was read closed at 0 s, before the 2 s bake ended; that reading must not pass the step.
    catalog, slow = services
    routes = table(stack.monolith.url, catalog.url)
    routes["backends"]["catalog"]["breaker_cooldown"] = 60.0
    routes["backends"]["reports"] = {"url": slow.url, "health_path": "/healthz", "timeout": 10}
    routes["routes"].append(
        {"id": "reports", "prefix": "/reports", "monolith": "monolith", "service": "reports"}
    )
    open_store(str(stack.routes)).apply(routes, "test", "two services")
    shoppers = Shoppers(stack.proxy.url)
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    env = Environment(routes=str(stack.routes), metrics=(stack.metrics_url,))
    run = store.create("slow-round", "t.toml", SLOW_ROUND, {}, env.to_json(), "canary-50", "t", "")
    lines: list[str] = []
    try:
        finished = Engine(store, run.id, "tester", lines.append).run()
        rounds = [e.data["evaluations"] for e in store.events(run.id, "gates")]
    finally:
        shoppers.finish()
        store.close()
    assert finished.state == "paused", "\n".join(lines)
    assert stack.weight() == 0  # rolled back
    assert {e["gate"]: e["outcome"] for e in rounds[-1]}["breaker_closed"] == "fail"
