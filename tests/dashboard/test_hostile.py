"""Raw bytes at a running `strangler dashboard`: refused cleanly, and it keeps serving."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.helpers import TOKEN, DashboardProcess, free_port
from tests.proxy.helpers import strangler, table, write_json


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    work = tmp_path_factory.mktemp("hostile")
    seed = write_json(work / "seed.json", table("http://127.0.0.1:1", "http://127.0.0.1:2"))
    config = work / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    running = DashboardProcess("--config", str(config), "--proxy-admin", "http://127.0.0.1:1")
    yield running
    running.stop()


def exchange(dashboard: DashboardProcess, data: bytes) -> bytes:
    """Send raw bytes; what the dashboard answers (it must answer within the timeout)."""
    host, port = dashboard.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def head(path: str, length: int, host: str = "127.0.0.1") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_huge_body_is_refused_before_it_has_all_arrived(dashboard: DashboardProcess) -> None:
    # 64 MB announced, 128 KB sent: the answer must not wait for the rest.
    answer = exchange(dashboard, head("/api/session", 64 * 2**20) + b" " * 131072)
    assert answer.startswith(b"HTTP/1.1 413")


def test_garbage_and_foreign_hosts_are_refused_and_it_keeps_serving(
    dashboard: DashboardProcess,
) -> None:
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)
    assert exchange(dashboard, tls_hello)[:12] in (b"HTTP/1.1 400", b"")
    rebinding = exchange(dashboard, head("/api/session", 2, host="evil.example") + b"{}")
    assert rebinding.startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{dashboard.url}/healthz", timeout=5).json() == {"ok": True}


def test_nothing_is_served_from_outside_the_static_folder(dashboard: DashboardProcess) -> None:
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fauth.py"):
        assert httpx.get(f"{dashboard.url}{path}", timeout=5).status_code == 404


def test_a_session_outlives_a_dashboard_killed_with_9_but_not_a_new_token(
    tmp_path: Path,
) -> None:
    seed = write_json(tmp_path / "seed.json", table("http://127.0.0.1:1", "http://127.0.0.1:2"))
    config = tmp_path / "routes.json"
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    args = ("--config", str(config), "--proxy-admin", "http://127.0.0.1:1",
            "--listen", f"127.0.0.1:{free_port()}")  # fmt: skip
    first = DashboardProcess(*args)
    client = httpx.Client(base_url=first.url, timeout=5)
    assert client.post("/api/session", json={"token": TOKEN, "actor": "fay"}).status_code == 200
    first.proc.kill()  # -9: nothing saved on the way out, and nothing needs to be
    first.stop()
    again = DashboardProcess(*args)
    try:
        assert client.get("/api/state").json()["signed_in"] is True
    finally:
        again.stop()
    rotated = DashboardProcess(*args, token="a-new-token-0123456789")
    try:
        assert client.get("/api/state").json()["signed_in"] is False
    finally:
        rotated.stop()
        client.close()
