"""Put the strangler proxy in front of the monolith and start a client that browses through it.

The route /api/v1/products starts at weight 0; the migrate step moves it. Unless an earlier
step extracted the catalog (`ctx.facts["catalog_url"]`), a second monolith process stands in
as the "catalog" backend, so a split is real (two processes) and visible in the
X-Strangler-Backend header.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter

import httpx

from strangler.demo import dashboard
from strangler.demo.context import DemoContext, DemoError
from strangler.demo.monolith import listening_socket, wait_healthy

TITLE = "Strangler proxy in front of the monolith, /api/v1/products at weight 0; a client starts"
PHASE_SECONDS = 1.5
USERS = 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stand_in(ctx: DemoContext) -> str:
    """A second monolith process answering as the 'catalog' backend."""
    sock = listening_socket()
    with sock:
        port = sock.getsockname()[1]
        argv = ctx.python("-m", "gunicorn", "monolith.wsgi:application",
                          "--bind", f"fd://{sock.fileno()}", "--workers", "1")  # fmt: skip
        process = ctx.start("catalog-stand-in", argv, pass_fds=[sock.fileno()])
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return url


def wait_for_version(admin_url: str, number: int, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if httpx.get(f"{admin_url}/healthz", timeout=1).json()["version"] >= number:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise DemoError(f"the proxy did not reach route table version {number} in {timeout:.0f}s")


class Shoppers:
    """Client threads browsing products through the proxy, each request as one of USERS.

    They run from the proxy step to the end of the demo; every failure is kept with its time,
    so the demo can tell those a deliberate fault caused from any other.
    """

    def __init__(self, url: str, threads: int = 2, pause: float = 0.01) -> None:
        self.url = url
        self.pause = pause
        self.phase: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()
        self.failed: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._browse, args=(i,), daemon=True)
                        for i in range(threads)]  # fmt: skip
        for thread in self.threads:
            thread.start()

    def _browse(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = index
            while not self.stop.wait(self.pause):
                n += len(self.threads)
                user = f"shopper-{n % USERS}"
                try:
                    r = client.get("/api/v1/products", params={"page_size": 1},
                                   headers={"X-User-ID": user})  # fmt: skip
                    outcome = r.headers.get("x-strangler-backend", "?") if r.is_success else ""
                    problem = "" if outcome else f"{r.status_code} {r.text[:120]}"
                except httpx.HTTPError as error:
                    outcome, problem = "", repr(error)
                with self.lock:
                    if problem:
                        self.failed.append((time.monotonic(), problem))
                    self.phase[outcome or "failed"] += 1
                    self.totals[outcome or "failed"] += 1

    def take_phase(self) -> Counter[str]:
        with self.lock:
            phase, self.phase = self.phase, Counter()
        return phase

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def run(ctx: DemoContext) -> None:
    service_url = str(ctx.facts.get("catalog_url") or "")
    if service_url:
        ctx.log(f"service backend: the extracted catalog at {service_url}")
    else:
        service_url = start_stand_in(ctx)
        ctx.log(f"service backend: no extracted catalog in the demo yet, so a second monolith "
                f"process at {service_url} stands in for it")  # fmt: skip
    work = ctx.work_dir / "proxy"
    work.mkdir(exist_ok=True)
    config = work / "routes.json"
    table = {
        "default_backend": "monolith",
        "backends": {"monolith": {"url": ctx.monolith_url, "health_path": "/healthz"},
                     "catalog": {"url": service_url, "timeout": 10.0,
                                 "health_path": "/healthz"}},
        "routes": [{"id": "products", "prefix": "/api/v1/products", "monolith": "monolith",
                    "service": "catalog", "weight": 0,
                    "sticky": ["header:X-User-ID", "client_address"]}],
    }  # fmt: skip
    config.write_text(json.dumps(table, indent=2))
    port, admin_port = free_port(), free_port()
    ctx.start("proxy", ctx.python(
        "-m", "strangler", "proxy", "--config", str(config), "--listen", f"127.0.0.1:{port}",
        "--admin", f"127.0.0.1:{admin_port}", "--parity-store", str(work / "parity.sqlite3"),
        "--access-log", str(ctx.log_dir / "proxy-access.log")))  # fmt: skip
    proxy_url, admin_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    wait_for_version(admin_url, 1, timeout=15)
    ctx.log(f"proxy {proxy_url} (admin and /metrics on {admin_url}), route table {config}")
    dashboard.start(ctx, config, admin_url, free_port())
    shoppers = Shoppers(proxy_url)
    ctx.stack.callback(shoppers.finish)
    ctx.live["shoppers"] = shoppers
    time.sleep(PHASE_SECONDS)
    seen = shoppers.take_phase()
    ctx.log(f"a client browses through the proxy as {USERS} users: {sum(seen.values())} "
            f"requests in {PHASE_SECONDS:.1f}s, {seen['catalog']} on catalog (weight 0), "
            f"{seen['failed']} failed; it keeps running until the demo ends")  # fmt: skip
    if shoppers.failed:
        raise DemoError(f"{len(shoppers.failed)} requests failed through the proxy, e.g. "
                        f"{shoppers.failed[0][1]}")  # fmt: skip
    ctx.facts["proxy"] = {"url": proxy_url, "admin_url": admin_url, "config": str(config),
                          "parity_store": str(work / "parity.sqlite3")}  # fmt: skip
