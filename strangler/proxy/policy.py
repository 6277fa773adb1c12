"""The proxy's rules as pure functions: retry, fallback, failure answers, message framing.

Kept apart from the sockets so each rule is unit-tested on its own and the exchange
(strangler.proxy.exchange) only asks them; nothing here does I/O or keeps state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from strangler.control.model import Backend
from strangler.control.routing import IDEMPOTENT_METHODS, SAFE_METHODS, Decision

# Why one attempt on a backend produced no usable response head.
FailureReason = Literal[
    "connect_failed", "connection_lost", "bad_response", "timeout", "breaker_open"
]
RETRYABLE: frozenset[str] = frozenset({"connect_failed", "connection_lost"})
NO_BODY_STATUSES = frozenset({204, 304})
FAILURE_STATUS: dict[str, int] = {"timeout": 504, "breaker_open": 503}  # else 502


def may_retry(reason: str | None, method: str, has_body: bool) -> bool:
    """A connection failure is retried once, for idempotent methods without a body."""
    return reason in RETRYABLE and method in IDEMPOTENT_METHODS and not has_body


def may_fall_back(
    decision: Decision | None, method: str, has_body: bool, backends: Mapping[str, Backend]
) -> bool:
    """A failed service request goes to the route's monolith when it is safe to repeat.

    Not for retired routes (their monolith path is gone), requests with a body or unsafe
    methods, nor when a flip removed the monolith backend from the table.
    """
    if decision is None or decision.role != "service":
        return False
    route = decision.route
    return (
        route is not None
        and route.state != "retired"
        and method in SAFE_METHODS
        and not has_body
        and route.monolith in backends
    )


def failure_status(reason: str) -> int:
    """502 for a broken backend, 503 while its breaker is open, 504 for a timeout."""
    return FAILURE_STATUS.get(reason, 502)


def failure_text(reason: str, backend: Backend) -> str:
    """The one-line error a client gets, naming the backend and what went wrong."""
    name = backend.name
    texts = {
        "timeout": f"backend {name} did not answer within {backend.timeout} s",
        "breaker_open": f"circuit breaker for backend {name} is open",
        "connect_failed": f"cannot connect to backend {name} ({backend.url})",
        "connection_lost": f"backend {name} closed the connection without answering",
        "bad_response": f"backend {name} sent an invalid response",
    }
    return texts.get(reason, f"backend {name} failed: {reason}")


def failure_body(reason: str, backend: Backend, req_id: bytes) -> bytes:
    """The JSON body of a 502/503/504 the proxy answers for a backend."""
    data = {
        "error": failure_text(reason, backend),
        "backend": backend.name,
        "reason": reason,
        "request_id": req_id.decode(),
    }
    return json.dumps(data).encode() + b"\n"


def rejection_body(status: int, text: str, req_id: bytes) -> bytes:
    """The JSON body of a request the proxy refuses itself (400/408/413/431/501)."""
    return (
        json.dumps({"error": text, "status": status, "request_id": req_id.decode()}).encode()
        + b"\n"
    )


# How a response's body is delimited towards the client: (the Content-Length or
# Transfer-Encoding line or b"", whether the proxy re-chunks the body, whether the connection
# may serve another request afterwards). A plain tuple: one is built per request.
Framing = tuple[bytes, bool, bool]


def response_framing(
    method: bytes,
    status: int,
    headers: list[tuple[bytes, bytes]],
    http10: bool,
    keep_alive: bool,
) -> Framing:
    """Keep a usable Content-Length, chunk a body of unknown length, or end it by closing.

    HEAD answers and 204/304 have no body whatever they announce; an HTTP/1.0 client
    cannot read chunks, so a body without a length ends with the connection.
    """
    length = coding = None
    for name, value in headers:  # the last of each wins, as a dict would
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            length = value
        elif size == 17 and name.lower() == b"transfer-encoding":
            coding = value
    if method == b"HEAD" or status in NO_BODY_STATUSES:
        # A 204 may not announce a length at all (RFC 9110 8.6); a HEAD or 304 answer's is
        # the length a GET would get.
        announced = length is not None and status != 204
        line = b"Content-Length: %s\r\n" % length if announced else b""
        return line, False, keep_alive
    if length is not None and (coding is None or b"chunked" not in coding.lower()):
        return b"Content-Length: %s\r\n" % length, False, keep_alive
    if http10:
        return b"", False, False
    return b"Transfer-Encoding: chunked\r\n", True, keep_alive


def codings_shown(values: list[bytes]) -> str:
    """The transfer codings of a message's Transfer-Encoding headers, as one list."""
    return ", ".join(c.strip().lower().decode("latin-1") for c in b",".join(values).split(b","))


def only_chunked(values: list[bytes]) -> bool:
    """True when the Transfer-Encoding headers name `chunked` alone: any other coding would
    pass on coded bytes as plain ones once the hop-by-hop header is dropped."""
    return codings_shown(values) == "chunked"


def response_fault(status: int, codings: list[bytes]) -> str:
    """Why a backend's response head cannot be passed on (its Transfer-Encoding values given),
    or "" when it can."""
    if codings and not only_chunked(codings):
        return f"transfer coding {codings_shown(codings)!r} is not proxied"
    if status < 100:  # llhttp takes any three digits
        return f"status code {status}"
    return ""


def request_framing(chunked: bool, content_length: str | None) -> bytes:
    """The framing line of the request sent upstream: chunks re-chunked, a declared length
    kept as a plain number (0 too: RFC 9110 8.6), none when the client declared none."""
    if chunked:
        return b"Transfer-Encoding: chunked\r\n"
    if content_length is not None:
        return b"Content-Length: %d\r\n" % declared_length(content_length)
    return b""


def declared_length(content_length: str | None) -> int:
    """A request's Content-Length as a number (the parser let digits only through)."""
    return int(content_length) if content_length and content_length.strip().isdigit() else 0
