"""The client side of the data plane: an asyncio protocol per connection, llhttp parsing.

Why not an ASGI app: measured here (docs/proxy.md), an ASGI server plus a pooled client
spends ~160-1,300 us of CPU per proxied request against nginx's ~10-24 us; working on raw
bytes with llhttp on both sides, keep-alive upstream pools and decisions precomputed at
table load keeps the overhead within a small multiple of nginx's.

This module reads requests, enforces the limits, answers what the proxy refuses itself and
keeps pipelined answers in order; each request's journey is a strangler.proxy.exchange.Exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast

import httptools

from strangler.proxy.exchange import Exchange
from strangler.proxy.headers import error_response
from strangler.proxy.policy import rejection_body
from strangler.proxy.state import ProxyState

IDLE_TIMEOUT = 75.0
BODY_TIMEOUT = 30.0


class Refused(Exception):
    """Raised inside a parser callback to stop parsing a request the proxy refuses."""


def origin_form(target: bytes) -> bytes:
    """`http://host/p?q` -> `/p?q`: an absolute-form target never names the upstream."""
    if target[:1] == b"/":
        return target
    if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
        slash = target.find(b"/", target.find(b"//") + 2)
        return target[slash:] if slash >= 0 else b"/"
    return target


class ClientConnection(asyncio.Protocol):
    """One client's keep-alive connection; requests are answered in order."""

    def __init__(self, state: ProxyState, connections: set[ClientConnection]) -> None:
        self.state = state
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.client_address = ""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.hosts = 0
        self.codings: list[bytes] = []
        self.parsing: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.closing = False
        self.last_active = time.monotonic()
        self.reject_status = 0
        self.reject_text = ""
        self.refusal = b""  # an error answer waiting for earlier pipelined answers
        self.corked = False
        self.out: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client_address = peer[0] if peer else "unknown"
        self.client_ip = self.client_address.encode()
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.connections.discard(self)
        queued, self.queue = list(self.queue), deque()
        for exchange in queued:
            self._abandon(exchange)

    def _abandon(self, ex: Exchange) -> None:
        """The client is gone or refused; a fast-path exchange has no coroutine to count it."""
        if ex.fast:
            self.state.metrics.in_flight -= 1
        ex.client_gone()

    def pause_writing(self) -> None:
        if self.queue and self.queue[0].upstream is not None:
            self.queue[0].upstream.pause_reading(True)

    def resume_writing(self) -> None:
        if self.queue and self.queue[0].upstream is not None:
            self.queue[0].upstream.pause_reading(False)

    def data_received(self, data: bytes) -> None:
        if self.refusal:
            return  # the parser has failed; nothing after the refused request is read
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The Upgrade header is hop-by-hop and dropped: the request is answered as plain
            # HTTP and the connection closes afterwards, so no upgraded bytes are parsed.
            pass
        except httptools.HttpParserError as error:
            if self.reject_status:
                self.reject(self.reject_status, self.reject_text)
            else:
                self.reject(400, f"malformed request: {error}")

    def _refuse(self, status: int, text: str) -> None:
        """Stop parsing; data_received answers `status` with `text` and closes."""
        self.reject_status, self.reject_text = status, text
        raise Refused

    def _too_large(self) -> None:
        self._refuse(413, f"request body larger than {self.state.max_body_bytes} bytes")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.headers, self.header_bytes = b"", [], 0
        self.hosts, self.codings = 0, []

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.state.max_header_bytes:
            self._too_many_header_bytes()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        size = len(name)
        self.header_bytes += size + len(value) + 4
        if self.header_bytes > self.state.max_header_bytes:
            self._too_many_header_bytes()
        if size == 4 and name.lower() == b"host":
            self.hosts += 1
        elif size == 17 and name.lower() == b"transfer-encoding":
            self.codings.append(value)

    def _too_many_header_bytes(self) -> None:
        self._refuse(431, f"request header section larger than {self.state.max_header_bytes} bytes")

    def _check_framing(self) -> None:
        """One Host (RFC 9112 3.2), and no transfer coding the proxy would silently drop."""
        if self.hosts > 1:
            self._refuse(400, "more than one Host header")
        if self.codings:
            codings = [c.strip().lower() for c in b",".join(self.codings).split(b",")]
            if codings != [b"chunked"]:
                shown = b", ".join(codings).decode("latin-1")
                self._refuse(501, f"Transfer-Encoding {shown!r} is not proxied; only chunked")

    def on_headers_complete(self) -> None:
        parser = self.parser
        if self.hosts > 1 or self.codings:
            self._check_framing()
        exchange = Exchange(
            self,
            parser.get_method(),
            origin_form(self.url),
            self.headers,
            parser.should_keep_alive(),
            parser.get_http_version() == "1.0",
            bool(self.codings),
        )
        # Trailer fields arrive through on_header too; they must not join this request's
        # header list, which is written upstream later (after a connect, on a retry).
        self.headers = []
        if exchange.method == b"CONNECT":
            self._refuse(501, "CONNECT tunnels are not proxied")
        if parser.should_upgrade():
            exchange.keep_alive = False
        length = exchange.lower.get("content-length", "0") or "0"
        if length.isdigit() and int(length) > self.state.max_body_bytes:
            self._too_large()
        self.parsing = exchange
        self.queue.append(exchange)
        if len(self.queue) == 1:
            exchange.start()
        else:
            self.pause_reading(True)  # pipelined: answer in order, read on when caught up

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is None:
            return
        if exchange.body_bytes + len(body) > self.state.max_body_bytes:
            self._too_large()
        exchange.feed_body(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.end_body()
            self.parsing = None

    # output
    def write(self, data: bytes) -> None:
        if self.corked:
            self.out.append(data)
        elif self.transport is not None and not self.closing:
            self.transport.write(data)

    def cork(self, corked: bool) -> None:
        """Collect writes while one upstream read is parsed, then send them in one syscall."""
        self.corked = corked
        if not corked and self.out:
            out, self.out = self.out, []
            if self.transport is not None and not self.closing:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def abort(self) -> None:
        self.closing = True
        self.out = []
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self, paused: bool) -> None:
        if self.transport is None or self.closing:
            return
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def reject(self, status: int, reason: str) -> None:
        """Answer a request the proxy refuses itself, then close the connection.

        Requests pipelined before it are answered first: they may have reached a backend.
        """
        self.state.metrics.rejected[(str(status),)] += 1
        refused, self.parsing = self.parsing, None
        if refused is not None and refused in self.queue:
            if refused.committed:  # its answer is under way: only a cut can end it now
                self.abort()
                return
            self.queue.remove(refused)
            self._abandon(refused)
        req_id = self.state.request_ids.accept(None)
        self.refusal = error_response(status, rejection_body(status, reason, req_id), req_id)
        if self.queue:
            self.pause_reading(True)
        else:
            self._send_refusal()

    def _send_refusal(self) -> None:
        self.write(self.refusal)
        self.close()

    def close(self) -> None:
        self.cork(False)
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def close_if_idle(self, now: float) -> None:
        """Close when idle too long or draining; also when a request body stalls."""
        idle = not self.queue and (self.state.draining or now - self.last_active > IDLE_TIMEOUT)
        stalled = (
            self.parsing is not None
            and not self.parsing.committed
            and (now - self.last_active > BODY_TIMEOUT)
        )
        if idle or stalled:
            self.close()

    def exchange_done(self, ex: Exchange) -> None:
        """An exchange answered: close, or start the next pipelined request."""
        ex.finished = True
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        if self.closing:
            return
        if not ex.keep_alive or not ex.request_done:
            self.close()
        elif self.queue:
            self.pause_reading(False)
            self.queue[0].start()
        elif self.refusal:
            self._send_refusal()
