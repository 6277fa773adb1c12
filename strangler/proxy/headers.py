"""Header hygiene as pure functions: what goes upstream, what goes back to the client."""

from __future__ import annotations

import os
import re

from strangler.control.reserved import FRAMING, PROXY_WRITTEN
from strangler.control.reserved import HOP_BY_HOP as HOP_BY_HOP_NAMES

HOP_BY_HOP = frozenset(n.encode() for n in HOP_BY_HOP_NAMES)
# Rewritten by the proxy itself; a client's own values must not pass through unchanged.
# X-Forwarded-For is not skipped but extended, X-Forwarded-Proto kept when it names a
# scheme, in upstream_request_head.
PASSED_ON = {"host", "x-forwarded-for", "x-forwarded-proto"}
REWRITTEN = frozenset(n.encode() for n in (PROXY_WRITTEN | FRAMING) - PASSED_ON)
# The proxy listens on plain HTTP: anything else was the TLS-terminating load balancer's word.
SCHEMES = frozenset({b"http", b"https"})
PLAIN = frozenset({b"keep-alive", b"close"})
NEVER_HOP_BY_HOP = frozenset({b"host"})  # RFC 9112 3.2: the request's target authority
RESPONSE_REWRITTEN = frozenset({b"content-length", b"x-request-id"})
RESPONSE_SKIP = HOP_BY_HOP | RESPONSE_REWRITTEN
REQUEST_SKIP = HOP_BY_HOP | REWRITTEN
NO_NAMES: frozenset[bytes] = frozenset()
# RESPONSE_SKIP plus the configured backend header, by that header (built once per setting,
# not per response: the union copies the whole set).
_RESPONSE_SKIPS: dict[bytes, frozenset[bytes]] = {b"": RESPONSE_SKIP}
REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in Connection: (also hop-by-hop for this message), never Host."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens) - NEVER_HOP_BY_HOP


class RequestIds:
    """Request ids that cannot be guessed and do not reveal how many came before.

    A random per-process prefix (to group a process's lines) plus 96 random bits, taken
    from a batch of os.urandom so no request pays for a system call.
    """

    __slots__ = ("at", "batch", "prefix")

    BATCH = 4096  # random bytes per refill: 8192 hex digits, 341 ids

    def __init__(self) -> None:
        self.prefix = os.urandom(4).hex().encode()
        self.batch = b""
        self.at = 0

    def accept(self, given: bytes | None) -> bytes:
        """The client's X-Request-ID when it is sane (1-128 of A-Za-z0-9._:-), else a new one."""
        if given and REQUEST_ID.match(given):
            return given
        at = self.at
        if at + 24 > len(self.batch):
            self.batch, at = os.urandom(self.BATCH).hex().encode(), 0
        self.at = at + 24
        return self.prefix + self.batch[at : at + 24]


def response_skip(backend_header: bytes) -> frozenset[bytes]:
    """The lower-case names a response head never passes on: the hop-by-hop and rewritten
    ones, and the backend header the proxy writes itself (b"": none configured)."""
    skip = _RESPONSE_SKIPS.get(backend_header)
    if skip is None:
        skip = _RESPONSE_SKIPS[backend_header] = RESPONSE_SKIP | {backend_header.lower()}
    return skip


def upstream_request_head(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    drop: frozenset[bytes],
    client_ip: bytes,
    host: bytes,
    req_id: bytes,
    framing: bytes,
) -> bytes:
    """The request head sent to a backend.

    X-Forwarded-For gets the client appended; X-Forwarded-Proto is kept when it is http or
    https (the TLS-terminating load balancer in front set it), else http, the proxy's own.
    `drop` holds extra lower-case names to remove (Connection tokens, override headers);
    `framing` is the Content-Length or Transfer-Encoding line to use, or b"".
    """
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    forwarded_for, proto = b"", b"http"
    skip = REQUEST_SKIP | drop if drop else REQUEST_SKIP
    for name, value in headers:
        lower = name.lower()
        if lower in skip:
            continue
        if lower == b"x-forwarded-for":
            forwarded_for = forwarded_for + b", " + value if forwarded_for else value
            continue
        if lower == b"x-forwarded-proto":
            proto = value.strip().lower() if value.strip().lower() in SCHEMES else b"http"
            continue
        lines += [name, b": ", value, b"\r\n"]
    xff = forwarded_for + b", " + client_ip if forwarded_for else client_ip
    lines += [b"X-Forwarded-For: ", xff, b"\r\nX-Forwarded-Proto: ", proto, b"\r\n"]
    if host:
        lines += [b"X-Forwarded-Host: ", host, b"\r\n"]
    lines += [b"X-Request-ID: ", req_id, b"\r\n", framing, b"\r\n"]
    return b"".join(lines)


def client_response_head(
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    framing: bytes,
    backend_header: bytes,
    backend: bytes,
    req_id: bytes,
    keep_alive: bool,
    http10: bool = False,
) -> bytes:
    """The response head sent back to the client, with the backend named if configured."""
    skip = response_skip(backend_header)
    for name, value in headers:
        # Connection may list extra hop-by-hop headers; the usual keep-alive/close adds none.
        if len(name) == 10 and name.lower() == b"connection" and value.lower() not in PLAIN:
            skip = skip | connection_tokens(headers)
    lines = [b"HTTP/1.1 %d " % status, reason or REASONS.get(status, "").encode(), b"\r\n"]
    for name, value in headers:
        if name.lower() not in skip:
            lines += [name, b": ", value, b"\r\n"]
    if backend_header:
        lines += [backend_header, b": ", backend, b"\r\n"]
    lines += [b"X-Request-ID: ", req_id, b"\r\n", framing]
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    elif http10:  # an HTTP/1.0 client closes unless the answer says otherwise
        lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def error_response(
    status: int,
    body: bytes,
    req_id: bytes,
    backend_header: bytes = b"",
    backend: bytes = b"",
    keep_alive: bool = False,
    http10: bool = False,
    head_only: bool = False,
) -> bytes:
    """A complete response the proxy answers itself (400/413/431/502/503/504); to a HEAD
    (`head_only`) the head alone, announcing the body a GET would get (RFC 9110 9.3.2)."""
    head = client_response_head(
        status,
        b"",
        [(b"Content-Type", b"application/json")],
        b"Content-Length: %d\r\n" % len(body),
        backend_header,
        backend,
        req_id,
        keep_alive,
        http10,
    )
    return head if head_only else head + body
