"""Real servers for proxy and control tests: upstream HTTP servers and proxy processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httptools
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
        if "/slow/" in path:
            time.sleep(float(path.rsplit("/", 1)[1]))
        status = int(path.rsplit("/", 1)[1]) if "/status/" in path else 200
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
        if path.endswith("/chunked"):  # framed by chunks, written in three pieces
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (payload[:10], payload[10:20], payload[20:], b""):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            return
        if path.endswith("/until-close"):  # no length: the body ends when the connection does
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True
            return
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


def serve_forever(name: str, port: int) -> None:
    """Entry point of an upstream process: print the port, serve until killed."""
    server = _Server(("127.0.0.1", port), _Handler)
    server.name = name
    print(server.server_address[1], flush=True)
    server.serve_forever()


class Upstream:
    """A real HTTP/1.1 server in its own process, answering JSON naming itself.

    A process (not a thread) so `kill()` cuts its connections the way a crash would.
    """

    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        code = (
            "from tests.proxy.helpers import serve_forever; "
            f"serve_forever({self.name!r}, {self.port})"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def backends_for(
    url: str,
    keys: list[str],
    path: str = "/api/v1/products/1",
    header: str = "X-User-ID",
    threads: int = 4,
    batch: int = 100,
) -> dict[str, str]:
    """Which backend answered each key, using pipelined keep-alive requests (fast, real)."""
    host, port = url.removeprefix("http://").split(":")
    result: dict[str, str] = {}

    def run(chunk: list[str]) -> None:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            for start in range(0, len(chunk), batch):
                part = chunk[start : start + batch]
                sock.sendall(
                    b"".join(
                        f"GET {path} HTTP/1.1\r\nHost: x\r\n{header}: {key}\r\n\r\n".encode()
                        for key in part
                    )
                )
                answers = _read_responses(sock, len(part))
                for key, (status, backend) in zip(part, answers, strict=True):
                    assert status == 200, (key, status)
                    result[key] = backend

    workers = [threading.Thread(target=run, args=(keys[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(result) == len(keys)
    return result


def _read_responses(sock: socket.socket, count: int) -> list[tuple[int, str]]:
    answers: list[tuple[int, str]] = []

    class Sink:
        backend = ""

        def on_header(self, name: bytes, value: bytes) -> None:
            if name.lower() == b"x-strangler-backend":
                self.backend = value.decode()

        def on_message_complete(self) -> None:
            answers.append((parser.get_status_code(), self.backend))
            self.backend = ""

    parser = httptools.HttpResponseParser(Sink())
    while len(answers) < count:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("proxy closed the connection")
        parser.feed_data(data)
    return answers


def table(monolith_url: str, service_url: str, weight: float = 0, **route: Any) -> dict[str, Any]:
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
            "monolith": {"url": monolith_url},
            "catalog": {
                "url": service_url,
                "timeout": 2.0,
                "connect_timeout": 0.5,
                "breaker_failures": 3,
                "breaker_cooldown": 1.0,
                "health_path": "/healthz",
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
        # A file, not a pipe, for the proxy's log: nobody drains a pipe, and a full one blocks.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
            env={**os.environ, "STRANGLER_ADMIN_TOKEN": token},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"proxy did not start: {self.log.read()}")
        ready = self.ready = json.loads(line)
        self.url = f"http://{ready['proxy']}"
        self.admin_url = f"http://{ready.get('admin', '')}"
        self.token = token

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        if not self.log.closed:  # stopped once already
            self.stderr = self.stderr_so_far()
            self.log.close()
        return code

    def stderr_so_far(self) -> str:
        """What the proxy has logged (stderr) up to now."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

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


def raw_request(proxy: ProxyProcess, data: bytes) -> bytes:
    """Send raw bytes to the proxy; everything it answers until it closes the connection."""
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def proxy_for(upstreams: tuple[Upstream, Upstream], tmp_path: Path, *extra: str) -> ProxyProcess:
    """A proxy on a file store holding the one-route table at weight 0."""
    monolith, catalog = upstreams
    config = write_json(tmp_path / "routes.json", table(monolith.url, catalog.url, 0))
    return ProxyProcess("--config", str(config), extra=extra)


def wait_in_flight(proxy: ProxyProcess, count: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until the proxy reports `count` requests in flight."""
    deadline = time.monotonic() + timeout
    while f"strangler_proxy_in_flight_requests {count}" not in proxy.metrics():
        assert time.monotonic() < deadline, f"never {count} requests in flight"
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
