"""The admin listener shares the proxy's loop and descriptors: stalled and flooding clients
are bounded in time and number (real sockets, the real server, small limits)."""

from __future__ import annotations

import asyncio
import json

from strangler.control import open_store
from strangler.control.admin import AdminApi, Reply, serve_admin

BIG = b"x" * (32 * 1024 * 1024)  # more than loopback socket buffers hold


def run(scenario, tmp_path, **limits):
    store = open_store(str(tmp_path / "routes.toml"))
    api = AdminApi(store, "token", {"/healthz": lambda: Reply(200, b"{}"),
                                    "/big": lambda: Reply(200, BIG)})  # fmt: skip

    async def main():
        server = await serve_admin(api, "127.0.0.1", 0, **limits)
        port = server.sockets[0].getsockname()[1]
        try:
            return await scenario(port)
        finally:
            server.close()

    return asyncio.run(main())


async def get(port: int, path: str = "/healthz") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_a_flood_of_idle_connections_gets_503_beyond_the_limit_and_frees_up(tmp_path):
    async def scenario(port):
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        await asyncio.sleep(0.1)
        over = await get(port)
        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.2)
        return over, await get(port)

    over, after = run(scenario, tmp_path, max_connections=4)
    assert over[0] == 503 and "limit of 4 open connections" in json.loads(over[1])["error"]
    assert after[0] == 200


def test_a_request_that_never_completes_gets_408_and_its_slot_back(tmp_path):
    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: ad")  # and nothing more
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer, await get(port)

    answer, after = run(scenario, tmp_path, read_timeout=0.3, max_connections=1)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert after[0] == 200, "the stalled client's slot is free again"


def test_a_client_that_never_reads_its_answer_is_cut_off(tmp_path):
    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /big HTTP/1.1\r\nHost: admin\r\n\r\n")
        await asyncio.sleep(1.0)  # never reads: the server's write stalls, then gives up
        received = 0
        try:
            while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
                received += len(chunk)
        except ConnectionResetError:
            pass
        writer.close()
        return received, await get(port)

    received, after = run(scenario, tmp_path, write_timeout=0.3, max_connections=1)
    assert 0 < received < len(BIG), "the answer was cut off, not sent whole"
    assert after[0] == 200, "the slot is free again"


def test_a_bad_value_in_a_request_body_is_a_400_that_says_what(tmp_path):
    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"version": "three"}'
        writer.write(b"POST /api/rollback HTTP/1.1\r\nAuthorization: Bearer token\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    answer = run(scenario, tmp_path)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"three" in answer


def test_a_reason_that_is_no_text_is_a_400_and_changes_nothing(tmp_path):
    """`"why": 5` was stored as "5" although a wrong type is a 400: the audit trail holds
    what a caller meant to write, or the change is refused."""

    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"weight": 30, "why": 5}'
        writer.write(b"POST /api/routes/products/weight HTTP/1.1\r\nAuthorization: Bearer "
                     b"token\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    answer = run(scenario, tmp_path)
    assert answer.startswith(b"HTTP/1.1 400 ") and b'\\"why\\" is text' in answer, answer
