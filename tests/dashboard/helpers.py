"""A real stack for the dashboard tests: upstreams, two proxy replicas, the dashboard process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.proxy.helpers import ROOT, ProxyProcess, Upstream, strangler, table, write_json

TOKEN = "dashboard-test-token-0123456789"
SCREENSHOTS = ROOT / "build" / "dashboard-screenshots"  # look here after a run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DashboardProcess:
    """`strangler dashboard --json` as a real process on a free port; stopped with SIGTERM."""

    def __init__(self, *args: str, token: str = TOKEN, env: dict[str, str] | None = None) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        argv = ["-m", "strangler", "dashboard", "--listen", "127.0.0.1:0", "--json", *args]
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {}), "STRANGLER_ADMIN_TOKEN": token},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"dashboard did not start: {self.log.read()}")
        self.url = json.loads(line)["dashboard"].rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=15)
        self.log.close()


@dataclass
class Stack:
    """Monolith and catalog upstreams, proxies sharing one file store, and the dashboard."""

    config: Path
    monolith: Upstream
    catalog: Upstream
    admin_ports: list[int]
    proxies: list[ProxyProcess] = field(default_factory=list)

    def start_proxy(self, index: int) -> ProxyProcess:
        proxy = ProxyProcess(
            "--config", str(self.config), extra=("--admin", f"127.0.0.1:{self.admin_ports[index]}")
        )
        if index < len(self.proxies):
            self.proxies[index] = proxy
        else:
            self.proxies.append(proxy)
        return proxy

    def route(self) -> dict:
        shown = strangler("route", "show", "products", "--config", str(self.config))
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)["route"]

    def history(self) -> list[dict]:
        done = strangler("route", "history", "--config", str(self.config), "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["versions"]

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        self.monolith.kill()
        self.catalog.kill()


def start_stack(work: Path, weight: float, replicas: int = 2) -> Stack:
    monolith, catalog = Upstream("monolith"), Upstream("catalog")
    seed = write_json(work / "seed.json", table(monolith.url, catalog.url, weight=weight))
    config = work / "routes.json"
    done = strangler("route", "set", str(seed), "--config", str(config), "--why", "seed")
    assert done.returncode == 0, done.stderr
    stack = Stack(config, monolith, catalog, [free_port() for _ in range(replicas)])
    for index in range(replicas):
        stack.start_proxy(index)
    return stack
