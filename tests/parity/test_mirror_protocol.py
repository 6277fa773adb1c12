"""What a proxy worker tells its mirror about routes, without processes: the worker's keys for
shadow policies stay bounded over any number of table versions, and so do the mirror's; the
bodies the mirror holds for calls in flight and waiting are bounded in bytes."""

from __future__ import annotations

import asyncio
import marshal
import struct
from decimal import Decimal

from strangler.control.model import Backend, Route
from strangler.control.shadow import ShadowPolicy
from strangler.proxy.metrics import ProxyMetrics
from strangler.proxy.mirror import HELD_BYTES, Mirror, Mirrored, PairHandOff
from strangler.proxy.shadow import MirrorProcess, Shadower


class Pipe:
    """Stands in for the pipe's write transport (the frames are read back below)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def messages(self) -> list[bytes]:
        out, at = [], 0
        while at < len(self.data):
            (size,) = struct.unpack_from(">I", self.data, at)
            out.append(bytes(self.data[at + 4 : at + 4 + size]))
            at += 4 + size
        return out


def test_route_keys_stay_bounded_over_many_table_versions_on_both_sides():
    asyncio.run(many_table_versions())


async def many_table_versions() -> None:
    backends = {"monolith": Backend("monolith", "http://127.0.0.1:1", "127.0.0.1", 1),
                "catalog": Backend("catalog", "http://127.0.0.1:2", "127.0.0.1", 2)}  # fmt: skip
    mirror_process = MirrorProcess(print, 0, ProxyMetrics())  # never started: no process
    pipe = mirror_process.transport = Pipe()  # type: ignore[assignment]
    shadower = Shadower(ProxyMetrics(), mirror_process)
    received = Mirror(PairHandOff(lambda batch: None), lambda: None)
    received.admit = lambda mirrored, pair: None  # type: ignore[method-assign]
    for version in range(1000):  # a table version each: new Route and ShadowPolicy objects
        route = Route("products", "monolith", "catalog", Decimal(0), "monolith", prefix="/p")
        policy = ShadowPolicy(percent=Decimal(10), candidate="catalog")
        key, mirrored = shadower._mirrored(route, policy, backends)
        assert mirrored is not None and mirrored.candidate.name == "catalog"
        assert mirror_process.offer("products", key, mirrored, marshal.dumps({"n": version}))
        mirror_process.flush()
        for message in pipe.messages():
            received.receive(message)
        pipe.data.clear()
    received.hand_off.close()
    assert len(shadower.keys) <= 257 and len(received.routes) <= 258


def test_the_bodies_held_for_calls_in_flight_and_waiting_are_bounded_in_bytes():
    """16 MiB caps, 64 calls in flight and 64 waiting: 128 pairs of 4 MiB answers would hold
    over 1 GiB before a single candidate answered. The mirror holds HELD_BYTES (each call's
    answer counted at its cap); the rest is dropped and counted, and a settled pair makes room."""
    candidate = Backend("catalog", "http://127.0.0.1:2", "127.0.0.1", 2)
    policy = ShadowPolicy(percent=Decimal(100), candidate="catalog", noise_percent=Decimal(0),
                          max_body_bytes=16 * 1024 * 1024)  # fmt: skip
    mirrored = Mirrored("products", policy, candidate, None)
    mirror = Mirror(PairHandOff(lambda batch: None), lambda: None)
    started = []
    mirror._call = lambda group, *rest: started.append(group)  # type: ignore[method-assign]

    def pair(n: int) -> dict:
        primary = {"status": 200, "headers": [], "body": b"x" * (4 * 1024 * 1024), "size": 0,
                   "latency_ms": 1.0, "base_url": "", "error": ""}  # fmt: skip
        return {"route": "products", "method": "GET", "shadow_head": b"GET /p HTTP/1.1\r\n\r\n",
                "request_body": b"", "primary": primary, "n": n}  # fmt: skip

    for n in range(128):
        mirror.admit(mirrored, pair(n))

    held = 4 * 1024 * 1024 + 16 * 1024 * 1024 + len(b"GET /p HTTP/1.1\r\n\r\n")
    assert len(started) == HELD_BYTES // held == 3
    assert mirror.counts[("products", "dropped_in_flight")] == 125
    assert mirror.held == 3 * held <= HELD_BYTES
    group = started[0]
    group.settled("candidate", dict(group.pair["primary"]))  # one answer in: room for one more
    mirror.admit(mirrored, pair(128))
    assert len(started) == 4 and mirror.held == 3 * held
    mirror.hand_off.close()
