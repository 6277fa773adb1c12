"""Health probes: one GET of a backend's health_path, on its own connection."""

from __future__ import annotations

import asyncio
import logging
import time

from strangler.control.model import Backend
from strangler.proxy.state import ProxyState

log = logging.getLogger("strangler.proxy")


async def healthy(backend: Backend) -> bool:
    """True when GET health_path answers below 500 within the backend's timeouts."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(backend.host, backend.port), backend.connect_timeout
        )
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(
            f"GET {backend.health_path} HTTP/1.1\r\nHost: {backend.host}:{backend.port}\r\n"
            "User-Agent: strangler-proxy-health\r\nConnection: close\r\n\r\n".encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), backend.timeout)
        parts = status_line.split()
        return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and int(parts[1]) < 500
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        writer.close()


async def probe(state: ProxyState, name: str) -> None:
    """Probe one backend whose breaker is half-open and feed the result back."""
    backend = state.compiled.table.backends.get(name)
    ok = backend is not None and await healthy(backend)
    state.breakers[name].probe_result(ok, time.monotonic())
    log.info("health probe of %s: %s", name, "ok, breaker closed" if ok else "failed, stays open")


def start_due_probes(state: ProxyState, now: float) -> None:
    """Start a probe for every breaker whose cooldown has passed."""
    for name, breaker in state.breakers.items():
        if breaker.probe_due(now):
            asyncio.get_running_loop().create_task(probe(state, name))
