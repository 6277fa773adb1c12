"""Real upstream servers and proxy processes for the proxy tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.control.conftest import pg_url  # noqa: F401 - the PostgreSQL store fixture
from tests.proxy.helpers import Upstream


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    """(monolith, catalog): two real HTTP servers in their own processes."""
    monolith, catalog = Upstream("monolith"), Upstream("catalog")
    yield monolith, catalog
    monolith.kill()
    catalog.kill()
