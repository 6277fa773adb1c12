"""Health probes against real servers: a 2xx answer is healthy, nothing else is."""

import asyncio
from dataclasses import replace

from strangler.control.model import Backend
from strangler.proxy.health import unhealthy


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
    assert asyncio.run(unhealthy(up)) is None
    assert "answered 503" in asyncio.run(unhealthy(replace(up, health_path="/status/503")))
    assert "cannot connect" in asyncio.run(unhealthy(backend(9)))  # nothing listens on port 9
    slow = replace(up, health_path="/slow/2")  # beyond its 1 s timeout
    assert asyncio.run(unhealthy(slow)) == "no answer within 1.0 s"


def test_a_health_path_answering_4xx_or_a_redirect_is_unhealthy(upstreams):
    """A wrong health_path (404), one behind a login (401), or Django's APPEND_SLASH redirect
    closed the breaker of a service the path says nothing about."""
    _, catalog = upstreams
    for status in (301, 401, 404, 429):
        failure = asyncio.run(unhealthy(backend(catalog.port, f"/status/{status}")))
        assert failure == f"GET /status/{status} answered {status} (healthy is 2xx)"
