"""The admin HTTP API: read the table, flip weights, push tables, roll back; JSON, token auth.

Bound to 127.0.0.1 by default. Every /api call needs `Authorization: Bearer TOKEN`; a
missing or wrong token gets 401 and changes nothing. /healthz and /metrics are open so
load balancers and Prometheus can read them without the token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from strangler.control.messages import ValidationFailed
from strangler.control.store import ConcurrentChange, RouteStore, Version

log = logging.getLogger("strangler.admin")
MAX_BODY = 1024 * 1024
# The admin listener shares the proxy's event loop and file descriptors, so a client that
# stalls (sends slowly, never reads) or a flood of connections is bounded in time and number.
READ_TIMEOUT = 10.0  # seconds for a whole request to arrive
WRITE_TIMEOUT = 10.0  # seconds for the answer to be taken
MAX_CONNECTIONS = 64  # open admin connections; one more is answered 503 at once
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def json_reply(status: int, data: Any) -> Reply:
    return Reply(status, json.dumps(data, indent=2).encode() + b"\n")


def version_json(version: Version, with_table: bool = True) -> dict[str, Any]:
    data = version.summary()
    if with_table:
        data["table"] = version.raw
    return data


class AdminApi:
    """Request handling, independent of the socket server so it is testable alone."""

    def __init__(
        self,
        store: RouteStore,
        token: str,
        open_paths: dict[str, Callable[[], Reply]] | None = None,
    ) -> None:
        self.store = store
        self.token = token
        self.open_paths = open_paths or {}

    def authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return (
            bool(self.token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), self.token.encode())
        )

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(target)
        if url.path in self.open_paths and method == "GET":
            return self.open_paths[url.path]()
        if not url.path.startswith("/api/"):
            return json_reply(404, {"error": f"no such path {url.path}"})
        if not self.authorized(headers):
            return json_reply(
                401,
                {
                    "error": "missing or wrong admin token",
                    "hint": "send Authorization: Bearer <token>",
                },
            )
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return json_reply(400, {"error": "body is not JSON"})
        if not isinstance(payload, dict):
            return json_reply(400, {"error": "body must be a JSON object"})
        who = headers.get("x-strangler-actor", "admin-api")
        why = payload.get("why", "")
        if not isinstance(why, str):
            return json_reply(400, {"error": '"why" is text: the reason the audit log keeps'})
        try:
            return self._dispatch(
                method, url.path.split("/")[2:], parse_qs(url.query), payload, who, why
            )
        except ValidationFailed as rejected:
            return json_reply(
                422,
                {
                    "error": "rejected; the running table was not changed",
                    "errors": [m.as_dict() for m in rejected.messages],
                },
            )
        except ConcurrentChange as conflict:
            return json_reply(409, {"error": str(conflict), "hint": "re-read and retry"})
        except LookupError as missing:
            return json_reply(404, {"error": str(missing)})
        except (TypeError, ValueError) as bad:  # e.g. {"version": "three"}
            return json_reply(400, {"error": f"bad request: {bad}"})

    def _dispatch(
        self,
        method: str,
        parts: list[str],
        query: dict[str, list[str]],
        payload: dict[str, Any],
        who: str,
        why: str,
    ) -> Reply:
        match method, parts:
            case "GET", ["routes"]:
                return json_reply(200, version_json(self.store.current()))
            case "PUT", ["routes"]:
                expect = payload.get("expect")
                if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int)):
                    return json_reply(400, {"error": '"expect" is a version number'})
                version = self.store.apply(payload.get("table"), who, why, expect=expect)
                return json_reply(200, version_json(version))
            case "GET", ["routes", route_id]:
                current = self.store.current()
                entry = next((r for r in current.raw["routes"] if r["id"] == route_id), None)
                if entry is None:
                    raise LookupError(f"no route {route_id!r}")
                return json_reply(200, {"version": current.number, "route": entry})
            case "POST", ["routes", route_id, "weight"]:
                if "weight" not in payload:
                    return json_reply(400, {"error": 'body needs {"weight": N}'})
                version = self.store.set_weight(route_id, payload["weight"], who, why)
                return json_reply(200, version_json(version))
            case "POST", ["routes", route_id, "shadow"]:
                if "percent" not in payload:
                    return json_reply(400, {"error": 'body needs {"percent": N}'})
                policy = {k: payload[k] for k in ("candidate", "secondary") if k in payload}
                version = self.store.set_shadow(route_id, payload["percent"], who, why, **policy)
                return json_reply(200, version_json(version))
            case "GET", ["history"]:
                limit = int(query.get("limit", ["50"])[0])
                return json_reply(
                    200,
                    {
                        "versions": [
                            version_json(v, with_table=False) | {"before": v.before, "after": v.raw}
                            for v in self.store.history(limit)
                        ]
                    },
                )
            case "POST", ["rollback"]:
                version = self.store.rollback(int(payload.get("version", -1)), who, why)
                return json_reply(200, version_json(version))
        return json_reply(404, {"error": f"no such endpoint {method} /api/{'/'.join(parts)}"})


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def _answer(api: AdminApi, reader: asyncio.StreamReader, read_timeout: float) -> Reply:
    try:
        method, target, headers, body = await asyncio.wait_for(_read_request(reader), read_timeout)
    except TimeoutError:
        return json_reply(408, {"error": f"request not received within {read_timeout:g} s"})
    except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return json_reply(400, {"error": "malformed request"})
    path = urlsplit(target).path
    try:
        if method == "GET" and path in api.open_paths:
            return api.open_paths[path]()  # in the loop thread: reads live numbers
        return await asyncio.to_thread(api.handle, method, target, headers, body)
    except Exception:
        log.exception("admin request failed")
        return json_reply(500, {"error": "internal error, see the proxy log"})


async def _send(writer: asyncio.StreamWriter, reply: Reply, write_timeout: float) -> None:
    """Write the answer and close; a client that does not take it in time is cut off."""
    writer.write(
        f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Error')}\r\n"
        f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + reply.body
    )
    try:
        await asyncio.wait_for(writer.drain(), write_timeout)
    except (TimeoutError, ConnectionError):
        writer.transport.abort()
    finally:
        writer.close()


async def serve_admin(
    api: AdminApi,
    host: str,
    port: int,
    read_timeout: float = READ_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Start the admin server on the running loop; store calls run in a thread. With
    `reuse_port`, on a port a supervisor holds for whichever worker serves it."""
    open_connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_connections
        open_connections += 1
        try:
            if open_connections > max_connections:
                limit = f"the admin API is at its limit of {max_connections} open connections"
                reply = json_reply(503, {"error": limit})
            else:
                reply = await _answer(api, reader, read_timeout)
            await _send(writer, reply, write_timeout)
        finally:
            open_connections -= 1

    return await asyncio.start_server(handle, host, port, reuse_port=reuse_port or None)
