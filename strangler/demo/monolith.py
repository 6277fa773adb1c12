"""Start the monolith under gunicorn on a free 127.0.0.1 port and wait until it is healthy."""

from __future__ import annotations

import socket
import time

import httpx

from strangler.demo.context import DemoContext, DemoError, Process

TITLE = "Start the monolith (gunicorn on a free local port)"
READY_TIMEOUT = 30.0


def listening_socket(port: int = 0) -> socket.socket:
    """A socket already bound and listening, so no other process can take the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart on the same port
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def wait_healthy(url: str, process: Process, timeout: float = READY_TIMEOUT) -> dict:
    """Poll /healthz until it answers 200, the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise DemoError(f"the monolith exited during start-up:\n{process.log_tail()}")
        try:
            response = httpx.get(f"{url}/healthz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{url}/healthz did not answer within {timeout:.0f}s:\n{process.log_tail()}")


def run(ctx: DemoContext) -> None:
    sock = listening_socket()
    with sock:
        port = sock.getsockname()[1]
        argv = ctx.python(
            "-m", "gunicorn", "monolith.wsgi:application",
            "--bind", f"fd://{sock.fileno()}",
            "--workers", "2",
            "--access-logfile", "-",
            "--graceful-timeout", "5",
        )  # fmt: skip
        process = ctx.start("monolith", argv, pass_fds=[sock.fileno()])
    ctx.monolith_url = f"http://127.0.0.1:{port}"
    health = wait_healthy(ctx.monolith_url, process)
    ctx.facts["monolith_url"] = ctx.monolith_url
    ctx.facts["monolith_pid"] = process.popen.pid
    ctx.log(f"{ctx.monolith_url} is up (pid {process.popen.pid}, database {health['database']})")
