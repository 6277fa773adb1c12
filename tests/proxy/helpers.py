"""Real servers for proxy and control tests: upstream HTTP servers and proxy processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per response: no Nagle/delayed-ACK stalls
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        path = self.path.split("?")[0]
        if path.startswith("/slow/"):
            time.sleep(float(path.rsplit("/", 1)[1]))
        status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
        payload = json.dumps(
            {
                "backend": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_len": len(body),
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "keep-alive")
        self.send_header("Keep-Alive", "timeout=30")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    name = ""


class Upstream:
    """A real HTTP/1.1 server that answers JSON naming itself; stoppable and restartable."""

    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.port = port
        self.server: _Server | None = None
        self.start()

    def start(self) -> None:
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.name = self.name
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def table(monolith: str, service: str, weight: float = 0, **route: Any) -> dict[str, Any]:
    """A one-route table: /api/v1/products split between two backends."""
    entry = {
        "id": "products",
        "prefix": "/api/v1/products",
        "monolith": "monolith",
        "service": "catalog",
        "weight": weight,
        "sticky": ["header:X-User-ID", "cookie:sessionid", "jwt_sub", "client_address"],
    }
    entry.update(route)
    return {
        "default_backend": "monolith",
        "backends": {
            "monolith": {"url": monolith},
            "catalog": {
                "url": service,
                "timeout": 2.0,
                "connect_timeout": 0.5,
                "breaker_failures": 3,
                "breaker_cooldown": 1.0,
            },
        },
        "routes": [entry],
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def strangler(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "strangler", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


class ProxyProcess:
    """`strangler proxy` as a real process on free ports; stopped with SIGTERM."""

    def __init__(
        self,
        *store_args: str,
        token: str = "test-token-0123456789",
        log_path: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        args = [
            sys.executable,
            "-m",
            "strangler",
            "proxy",
            *store_args,
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--grace",
            "5",
            "--access-log",
            str(log_path) if log_path else "off",
            *extra,
        ]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "STRANGLER_ADMIN_TOKEN": token},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"proxy did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        ready = json.loads(line)
        self.url = f"http://{ready['proxy']}"
        self.admin_url = f"http://{ready.get('admin', '')}"
        self.token = token

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    def metrics(self) -> str:
        return httpx.get(f"{self.admin_url}/metrics", timeout=5).text

    def version(self) -> int:
        return httpx.get(f"{self.admin_url}/healthz", timeout=5).json()["version"]

    def wait_for_version(self, number: int, timeout: float = 5.0) -> float:
        """Seconds until the proxy serves `number` (fails the test after `timeout`)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.version() >= number:
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"proxy still on version {self.version()}, wanted {number}")
