"""Keep-alive connections to one backend, parsed with httptools, pooled per backend."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, cast

import httptools

from strangler.control.model import Backend
from strangler.proxy.policy import response_fault


class Output(Protocol):
    """The client connection a response goes to; writes are collected while corked."""

    corked: bool

    def cork(self, corked: bool) -> None: ...


class ResponseSink(Protocol):
    """What an upstream connection reports to the request it is serving."""

    method: bytes

    @property
    def sent_whole(self) -> bool: ...  # the request went out in one write, body and all

    @property
    def client(self) -> Output | None: ...  # None: the answer goes nowhere (a shadow call)

    def on_response_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None: ...
    def on_response_body(self, body: bytes) -> None: ...
    def on_response_complete(self, keep_alive: bool) -> None: ...
    def on_upstream_lost(self, got_bytes: bool) -> None: ...
    def on_upstream_invalid(self, reason: str) -> None: ...
    def pause_client(self, paused: bool) -> None: ...
    def on_read_end(self) -> None: ...  # every callback of one read is made


# A response head larger than this is refused (502), as nginx refuses an upstream's "too big
# header": httptools keeps a field line to itself until it ends, so an endless one would grow
# in memory for as long as the backend sends it.
MAX_RESPONSE_HEAD_BYTES = 1 << 20


class GivenUp(Exception):
    """Raised in a parser callback once the connection is aborted: parse nothing more."""


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to a backend, serving one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.codings: list[bytes] = []  # the Transfer-Encoding values of the response
        self.reason = b""
        self.got_bytes = False
        self.informational = False
        self.closed = False
        self.idle_since = 0.0
        self.reused = False  # it answered a request before the one it serves now
        self.parsing = False  # a read is being parsed
        self.returning = False  # released while a read was parsed: pooled once it is
        self.in_head = False  # a response head begun and not complete
        self.head_fed = 0  # bytes read since then, after the read it began in

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.on_upstream_lost(self.got_bytes)
        else:
            self.pool.forget(self)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.pause_client(True)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.pause_client(False)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.in_head:
            self.head_fed += len(data)
            if self.head_fed > MAX_RESPONSE_HEAD_BYTES:
                self._invalid(f"response head from backend over {MAX_RESPONSE_HEAD_BYTES} bytes")
                return
        sink = self.sink
        output = sink.client if sink is not None else None
        if output is not None:
            output.corked = True  # head and body of a small response leave in one write
        self.parsing = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, GivenUp):
                raise
        except httptools.HttpParserError as error:
            self._invalid(f"invalid HTTP response from backend: {error}")
        finally:
            self.parsing = False
            if self.returning:
                self.returning = False
                self.pool.keep(self)
            if sink is not None:
                sink.on_read_end()
            if output is not None:
                output.cork(False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        # Fresh lists: never the one the previous response's exchange holds, nor the
        # trailer fields (and their codings) that arrived after its head.
        self.headers = []
        self.codings = []
        self.in_head, self.head_fed = True, 0
        if self.sink is None:
            # A response nobody asked for (a 408 before closing an idle connection, bytes
            # past a Content-Length, a body after a HEAD answer): the framing can no longer
            # be trusted, nor the connection, and nothing more of it is read.
            self.abort()
            raise GivenUp

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            self.codings.append(value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        status = self.parser.get_status_code()
        if self.codings or status < 100:
            fault = response_fault(status, self.codings)
            if fault:
                self._invalid(fault)
                raise GivenUp
        if status < 200:  # 1xx interim answers are not forwarded; the final one follows
            self.informational = True
            self.headers, self.reason = [], b""
            return
        headers, self.headers = self.headers, []  # trailer fields, if any, are dropped
        sink = self.sink
        if sink is None:
            return
        if status == 408 and self.reused and sink.sent_whole:
            # No answer to this request: the backend timed the idle connection out as the
            # request was on its way (Node's headersTimeout does). Go's net/http reads it so.
            self.sink = None
            self.abort()
            sink.on_upstream_lost(False)
            raise GivenUp
        sink.on_response_head(status, self.reason, headers)
        if sink.method == b"HEAD":
            # A HEAD response has no body whatever Content-Length says; llhttp cannot be
            # told which request it answers, so finish here and parse the next one afresh.
            # Whether the connection stays open is still the backend's word (Connection:
            # close, HTTP/1.0), read before the parser is replaced.
            keep_alive = self.parser.should_keep_alive()
            self.parser = httptools.HttpResponseParser(self)
            self.sink = None
            sink.on_response_complete(keep_alive)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.on_response_body(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.on_response_complete(self.parser.should_keep_alive())

    def _invalid(self, reason: str) -> None:
        """A response the proxy will not pass on: the request it answers has failed."""
        current, self.sink = self.sink, None
        self.abort()
        if current is not None:
            current.on_upstream_invalid(reason)

    # used by the request
    def send(self, sink: ResponseSink, data: bytes) -> None:
        self.sink = sink
        self.reason, self.got_bytes = b"", False  # the header list: on_message_begin's
        assert self.transport is not None
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def pause_reading(self, paused: bool) -> None:
        if self.transport is not None and not self.closed:
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def abort(self) -> None:
        self.sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


# Below gunicorn's default 2 s keep-alive: reusing a connection the backend is about to
# close would fail requests that cannot be retried (POST).
IDLE_SECONDS = 1.5


class Pool:
    """Idle keep-alive connections to one backend; new ones opened on demand."""

    def __init__(self, backend: Backend, max_idle: int = 512) -> None:
        self.backend = backend
        self.max_idle = max_idle
        self.idle: list[UpstreamConnection] = []
        self.closed = False

    def acquire_idle(self) -> UpstreamConnection | None:
        """The most recently used idle connection, unless it sat idle too long."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if time.monotonic() - conn.idle_since > IDLE_SECONDS:
                conn.abort()
                continue
            return conn
        return None

    async def connect(self) -> UpstreamConnection:
        """A new connection within the backend's connect timeout (OSError/TimeoutError)."""
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: UpstreamConnection(self), self.backend.host, self.backend.port
            ),
            self.backend.connect_timeout,
        )
        return conn

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        if reusable and conn.parsing:
            # Not before the rest of the read is parsed: bytes after this answer would be
            # taken for the answer of a request sent on it meanwhile (one pipelined behind,
            # started by this answer's end), and that request's answer would go to the
            # connection's next user. Bytes after it abort the connection instead.
            conn.sink, conn.returning = None, True
        elif reusable:
            self.keep(conn)
        else:
            conn.abort()

    def keep(self, conn: UpstreamConnection) -> None:
        """Pool a connection whose last answer is whole and parsed, unless it or the pool is
        closed or the pool is full (then it is aborted)."""
        if not conn.closed and not self.closed and len(self.idle) < self.max_idle:
            conn.sink = None
            conn.reused = True
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        else:
            conn.abort()

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.abort()
        self.idle.clear()
