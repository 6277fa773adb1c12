"""Health probes against real servers: an answer below 500 is healthy, nothing else is."""

import asyncio
from dataclasses import replace

from strangler.control.model import Backend
from strangler.proxy.health import healthy


def backend(port: int, path: str = "/healthz") -> Backend:
    return Backend(
        "catalog",
        f"http://127.0.0.1:{port}",
        "127.0.0.1",
        port,
        health_path=path,
        connect_timeout=0.5,
        timeout=1.0,
    )


def test_probe_outcomes(upstreams):
    _, catalog = upstreams
    up = backend(catalog.port)
    assert asyncio.run(healthy(up))
    assert not asyncio.run(healthy(replace(up, health_path="/status/503")))
    assert not asyncio.run(healthy(backend(9)))  # nothing listens on the discard port
    assert not asyncio.run(healthy(replace(up, health_path="/slow/2")))  # beyond its timeout
