"""Fixtures for parity tests: a parity store on SQLite and on PostgreSQL, and a shop's traffic."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import orjson
import pytest

from strangler.parity import Exchange, Reply
from strangler.parity.store import ParityStore
from tests.control.conftest import pg_url  # noqa: F401 - a fresh PostgreSQL database

JSON = (("content-type", "application/json"),)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def parity_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[ParityStore]:
    """The same store code on SQLite (embedded default) and PostgreSQL (production)."""
    location = (
        str(tmp_path / "parity.sqlite3")
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    store = ParityStore(location)
    yield store
    store.close()


def page(rng: random.Random, ids: list[int], price_bug: float = 0.0) -> bytes:
    """A product list page; timestamps and request ids differ on every call (real noise)."""
    items = [
        {
            "id": i,
            "price": f"{i}.00" if rng.random() >= price_bug else f"{i}.99",
            "updated_at": f"2026-01-01T10:{rng.randint(0, 59):02d}:00Z",
        }
        for i in ids
    ]
    body = {"request_id": uuid.UUID(int=rng.getrandbits(128)).hex, "results": items}
    return orjson.dumps(body)


def shop_traffic(
    count: int, price_bug: float, seed: int = 1, at: float = 1_800_000_000.0
) -> list[Exchange]:
    """`count` list requests; the candidate prices ~`price_bug` of the items differently."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        ids = [n * 10 + k for k in range(10)]
        out.append(
            Exchange(
                route="products",
                method="GET",
                path=f"/api/v1/products?page={n}",
                primary=Reply(200, JSON, page(rng, ids), latency_ms=2.0),
                candidate=Reply(200, JSON, page(rng, ids, price_bug), latency_ms=5.0),
                secondary=Reply(200, JSON, page(rng, ids), latency_ms=2.0),
                at=at + n * 0.01,
            )
        )
    return out
