"""Health probes: one GET of a backend's health_path, on its own connection."""

from __future__ import annotations

import asyncio
import logging
import time

from strangler.control.model import Backend
from strangler.proxy.state import ProxyState

log = logging.getLogger("strangler.proxy")


async def unhealthy(backend: Backend) -> str | None:
    """None when GET health_path answers 2xx within the backend's timeouts, else why not.

    2xx only: a 404 or a redirect means the path is wrong (Django's APPEND_SLASH answers
    /healthz with a 301), and a 401 or 429 is no sign the service can take traffic.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(backend.host, backend.port), backend.connect_timeout
        )
    except (OSError, TimeoutError) as error:
        return f"cannot connect: {error or 'timed out'}"
    try:
        writer.write(
            f"GET {backend.health_path} HTTP/1.1\r\nHost: {backend.host}:{backend.port}\r\n"
            "User-Agent: strangler-proxy-health\r\nConnection: close\r\n\r\n".encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), backend.timeout)
    except TimeoutError:
        return f"no answer within {backend.timeout} s"
    except OSError as error:
        return f"connection failed: {error}"
    finally:
        writer.close()
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return f"not an HTTP answer: {status_line[:80]!r}"
    status = int(parts[1])
    if not 200 <= status < 300:
        return f"GET {backend.health_path} answered {status} (healthy is 2xx)"
    return None


async def probe(state: ProxyState, name: str) -> None:
    """Probe one backend whose breaker is half-open and feed the result back."""
    backend = state.compiled.table.backends.get(name)
    failure = "not in the route table" if backend is None else await unhealthy(backend)
    state.breakers[name].probe_result(failure is None, time.monotonic())
    if failure is None:
        log.info("health probe of %s: ok, breaker closed", name)
    else:
        log.warning("health probe of %s failed, breaker stays open: %s", name, failure)


def start_due_probes(state: ProxyState, now: float) -> None:
    """Start a probe for every breaker whose cooldown has passed."""
    for name, breaker in state.breakers.items():
        if breaker.probe_due(now):
            asyncio.get_running_loop().create_task(probe(state, name))
