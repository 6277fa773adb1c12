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
import re
import time
from collections import deque
from typing import cast

import httptools

from strangler.proxy.exchange import Exchange
from strangler.proxy.headers import error_response
from strangler.proxy.policy import codings_shown, declared_length, only_chunked, rejection_body
from strangler.proxy.state import ProxyState

ABSOLUTE_FORM = re.compile(rb"https?://[^/?#]*", re.IGNORECASE)
IDLE_TIMEOUT = 75.0  # s a keep-alive connection may wait for its next request
LINGER_SECONDS = 1.0  # a connection refused at the limit is read (and dropped) this long


class Refused(Exception):
    """Raised inside a parser callback to stop parsing a request the proxy refuses."""


def origin_form(target: bytes) -> bytes:
    """`http://host/p?q` -> `/p?q`, `http://host?q` -> `/?q`: an absolute-form target
    never names the upstream."""
    if target[:1] == b"/":
        return target
    scheme_and_authority = ABSOLUTE_FORM.match(target)
    if scheme_and_authority is None:
        return target
    rest = target[scheme_and_authority.end() :]
    return rest if rest[:1] == b"/" else b"/" + rest


def with_target_authority(target: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """An absolute-form target's authority replaces the Host header (RFC 9112 3.2.2: the
    server ignores Host then), so the route is chosen by, and the backend sent, the host the
    request names; userinfo (`user@`) is no part of it."""
    found = ABSOLUTE_FORM.match(target)
    authority = found.group(0).split(b"//", 1)[1].rpartition(b"@")[2] if found else b""
    if not authority:
        return
    others = [(name, value) for name, value in headers if name.lower() != b"host"]
    headers[:] = [(b"Host", authority), *others]


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
        # Bytes of reads that began and ended inside the same header section (the head, or
        # the trailers of a chunked body), and whether one began in the read being parsed.
        self.section_fed = 0
        self.section_new = False
        self.trailer_mark = -1  # body bytes when the current chunk began (-1: no chunk open)
        self.hosts = 0
        self.codings: list[bytes] = []
        self.parsing: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.closing = False
        self.paused = False  # reading held back by the proxy (pipelining, back-pressure)
        self.last_active = time.monotonic()
        # When the request head being read began (0.0: none is); a new connection counts.
        self.head_since = self.last_active
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
        if len(self.connections) >= self.state.max_connections:
            self._refuse_connection()
            return
        self.connections.add(self)

    def _refuse_connection(self) -> None:
        """At the worker's connection limit: answer 503 at once, then close shortly after.

        The client's request is read and dropped for a moment first, so closing with unread
        bytes does not reset the connection before the client has read the answer.
        """
        state = self.state
        state.metrics.refused_connections[()] += 1
        text = f"proxy worker at its limit of {state.max_connections} connections; retry shortly"
        self.refusal = self._refusal(503, text)
        self.write(self.refusal)
        assert self.transport is not None
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.closing = True
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

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
            return  # refused: nothing after the refused request is read
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
        else:
            if self.head_since or (self.trailer_mark >= 0 and self._in_trailers()):
                self._read_inside_header_section(len(data))

    def _in_trailers(self) -> bool:
        """A chunk began and brought no data: the last one, its trailer section under way."""
        parsing = self.parsing
        return parsing is not None and parsing.body_bytes == self.trailer_mark

    def _read_inside_header_section(self, size: int) -> None:
        """A read ended inside a header section. httptools keeps a field line to itself until
        it is whole, so one that never ends is counted here, or it would grow (copied at
        every read) until the header timeout, or for trailers for good; the read the section
        began in is not counted, as part of it may be the request or the chunk before."""
        if self.section_new:
            self.section_new = False
            return
        self.section_fed += size
        if self.section_fed > self.state.max_header_bytes:
            self.reject(431, self._header_section_too_large())

    def _refuse(self, status: int, text: str) -> None:
        """Stop parsing; data_received answers `status` with `text` and closes."""
        self.reject_status, self.reject_text = status, text
        raise Refused

    def _too_large(self) -> None:
        self._refuse(413, f"request body larger than {self.state.max_body_bytes} bytes")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.headers, self.header_bytes = b"", [], 0
        self.section_fed, self.section_new = 0, True
        self.hosts = 0
        if self.codings:  # most requests have none: keep the empty list
            self.codings = []
        self.head_since = self.last_active  # the header timeout runs from the first byte

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
        self._refuse(431, self._header_section_too_large())

    def _header_section_too_large(self) -> str:
        return f"request header section larger than {self.state.max_header_bytes} bytes"

    def _check_framing(self) -> None:
        """One Host (RFC 9112 3.2), and no transfer coding the proxy would silently drop."""
        if self.hosts > 1:
            self._refuse(400, "more than one Host header")
        if self.hosts == 0 and self.parser.get_http_version() != "1.0":
            self._refuse(400, "an HTTP/1.1 request needs a Host header (RFC 9112 3.2)")
        if self.codings and not only_chunked(self.codings):
            shown = codings_shown(self.codings)
            self._refuse(501, f"Transfer-Encoding {shown!r} is not proxied; only chunked")

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.head_since = 0.0
        if self.hosts != 1 or self.codings:
            self._check_framing()
        if b"#" in self.url:
            # The proxy would route by all of it, a backend by what comes before the "#".
            self._refuse(400, "a request target holds no fragment (#...) (RFC 9112 3.2)")
        if self.url[:1] != b"/":
            with_target_authority(self.url, self.headers)
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
        if self.codings and exchange.http10:  # faulty framing: close after (RFC 9112 6.1)
            exchange.keep_alive = False
        if parser.should_upgrade():
            if exchange.has_body:  # llhttp skips the body of an Upgrade request: none to send
                self._refuse(501, "a request with a body asking for an Upgrade is not proxied")
            exchange.keep_alive = False
        if declared_length(exchange.lower.get("content-length")) > self.state.max_body_bytes:
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

    def on_chunk_header(self) -> None:
        parsing = self.parsing
        self.trailer_mark = parsing.body_bytes if parsing is not None else -1
        self.section_fed, self.section_new = 0, True

    def on_chunk_complete(self) -> None:
        self.trailer_mark = -1

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.end_body()
            self.parsing = None
            if exchange.finished and not self.closing:
                self._next()  # answered early; the rest of its body has now been read

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
        self.paused = paused
        if paused:
            self.transport.pause_reading()
        else:
            self.last_active = time.monotonic()  # the client was not the one waiting
            self.transport.resume_reading()

    def reject(self, status: int, reason: str) -> None:
        """Answer a request the proxy refuses itself, then close the connection.

        Requests pipelined before it are answered first: they may have reached a backend.
        """
        refused, self.parsing = self.parsing, None
        if refused is not None and refused in self.queue:
            if refused.committed:  # its answer is under way: only a cut can end it now
                self.abort()
                return
            self.queue.remove(refused)
            self._abandon(refused)
        self.refusal = self._refusal(status, reason, refused)
        if self.queue:
            self.pause_reading(True)
        else:
            self._send_refusal()

    def _refusal(self, status: int, reason: str, refused: Exchange | None = None) -> bytes:
        """The JSON answer to a refused request, counted and written to the access log."""
        state = self.state
        state.metrics.rejected[(str(status),)] += 1
        req_id = refused.req_id if refused is not None else state.request_ids.accept(None)
        if state.access_log is not None:
            state.access_log.write(
                {
                    "ts": round(time.time(), 3),
                    "request_id": req_id.decode(),
                    "method": refused.method_str if refused is not None else "-",
                    "path": (refused.target if refused is not None else self.url)[:512].decode(
                        "latin-1"
                    ),
                    "route": "(refused)",
                    "backend": "-",
                    "status": status,
                    "duration_ms": 0.0,
                    "client": self.client_address,
                    "error": reason,
                }
            )
        return error_response(status, rejection_body(status, reason, req_id), req_id)

    def _send_refusal(self) -> None:
        self.write(self.refusal)
        self.close()

    def close(self) -> None:
        self.cork(False)
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def sweep(self, now: float) -> None:
        """Close idle (or, when draining, every unused) connection; 408 a too slow client.

        Time the proxy itself holds reading back (pipelining, a backend slow to take the
        body) never counts against the client.
        """
        state = self.state
        if self.closing or self.refusal:
            return
        if self.head_since and now - self.head_since > state.header_timeout:
            if self.header_bytes or self.url:
                state.metrics.client_timeouts[("header",)] += 1
                self.reject(
                    408, f"request header section not received within {state.header_timeout} s"
                )
            else:
                self.close()  # a connection that never sent a byte gets no answer
            return
        parsing = self.parsing
        if parsing is not None:
            if not self.paused and now - self.last_active > state.body_timeout:
                state.metrics.client_timeouts[("body",)] += 1
                if parsing.committed:  # answered early: nothing can be said any more
                    self.abort()
                else:
                    self.reject(408, f"request body stalled for {state.body_timeout} s")
            return
        if not self.queue and (state.draining or now - self.last_active > IDLE_TIMEOUT):
            self.close()

    def exchange_done(self, ex: Exchange) -> None:
        """An exchange answered: close, or start the next pipelined request."""
        ex.finished = True
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        if self.closing:
            return
        if not ex.keep_alive:
            self.close()
        elif ex.request_done:
            self._next()
        else:
            # The backend answered before the whole body came: the rest is read (the backend
            # that held reading back is gone) and dropped, and on_message_complete goes on.
            if self.paused:
                self.pause_reading(False)

    def _next(self) -> None:
        """Start the next pipelined request, or send a refusal that waited for its turn.

        Reading resumes either way: what held it back (the requests before, the backend
        of the one just answered) is done.
        """
        if self.paused:
            self.pause_reading(False)
        if self.queue:
            self.queue[0].start()
        elif self.refusal:
            self._send_refusal()
