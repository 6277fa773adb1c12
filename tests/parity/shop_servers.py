"""Two real HTTP servers standing in for monolith and service in parity tests.

Each answers a product list and product details. Every answer carries real noise (a fresh
request id and the time it was generated); the candidate can price a share of the items
differently, answer 500, or sleep before answering.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Behaviour:
    price_bug: float = 0.0  # share of items priced differently
    status: int = 200
    sleep: float = 0.0
    hold: threading.Event | None = None  # when set: answer only once the test releases it
    padding: int = 0  # bytes of description per product (answers beyond the capture cap)
    until_close: bool = False  # the body framed by closing the connection (no Content-Length)
    arrived: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


def product(pk: int, bug: bool, padding: int = 0) -> dict:
    return {
        "id": pk,
        "name": f"Product {pk}",
        "price": f"{pk}.99" if bug else f"{pk}.00",
        "updated_at": "2026-01-01T10:00:00Z",
        **({"description": "x" * padding} if padding else {}),
    }


class ShopServer(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops connections a mirror opens at once on a busy machine
    # (a SYN retried after 1 s: a failed shadow call); gunicorn's is 2048, nginx's 511.
    request_queue_size = 128


def handler(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            sent = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            behaviour.seen.append((self.command, self.path, headers))
            behaviour.bodies.append(sent)
            behaviour.arrived.set()
            if behaviour.hold is not None:
                behaviour.hold.wait(timeout=30)
            if behaviour.sleep:
                time.sleep(behaviour.sleep)
            parts = urlsplit(self.path)
            rng = random.Random(parts.path + parts.query)  # the same items on every backend
            bug = random.Random()
            if parts.path.rstrip("/") == "/api/v1/products":
                page = int(parse_qs(parts.query).get("page", ["1"])[0])
                ids = range(page * 10, page * 10 + 10)
                host = self.headers.get("host", "")
                body = {
                    "count": 1000,
                    "next": f"http://{host}/api/v1/products?page={page + 1}",
                    "results": [
                        product(i, bug.random() < behaviour.price_bug, behaviour.padding)
                        for i in ids
                    ],
                }
            elif parts.path.startswith("/api/v1/products/"):
                pk = int(parts.path.rstrip("/").rsplit("/", 1)[1])
                body = product(pk, bug.random() < behaviour.price_bug)
            else:
                body = {"created": rng.randint(1, 9)}
            # The noise first, as a monolith's envelope would have it: in the first bytes.
            body = {"request_id": uuid.uuid4().hex, "generated_at": f"{time.time():.6f}", **body}
            data = json.dumps(body).encode()
            if "deep" in parse_qs(parts.query):  # a hostile answer: 1000 nested lists
                data = data[:-1] + b', "tree": ' + b"[" * 1000 + b"1" + b"]" * 1000 + b"}"
            self.send_response(behaviour.status)
            self.send_header("content-type", "application/json")
            if behaviour.until_close:
                self.send_header("connection", "close")
                self.close_connection = True
            else:
                self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _answer

    return Handler


@contextmanager
def serve(behaviour: Behaviour) -> Iterator[str]:
    """A threaded HTTP server on a free port; yields its base URL."""
    with serve_handler(handler(behaviour)) as url:
        yield url


@contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free port answering with `handler`; yields its base URL."""
    server = ShopServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def har(requests: list[tuple[str, str]], recorded: bool = True) -> dict:
    """A HAR 1.2 document as a browser exports it, for (method, url) pairs."""
    entries = []
    for method, url in requests:
        entry = {
            "startedDateTime": "2026-01-01T10:00:00.000Z",
            "time": 1.0,
            "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Accept", "value": "application/json"}],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        }  # fmt: skip
        if method != "GET":
            entry["request"]["postData"] = {"mimeType": "application/json", "text": "{}"}
        if recorded:
            entry["response"] = {"status": 201, "statusText": "", "httpVersion": "HTTP/1.1",
                                 "headers": [{"name": "content-type",
                                              "value": "application/json"}],
                                 "content": {"size": 2, "mimeType": "application/json",
                                             "text": '{"created": 1}'},
                                 "redirectURL": "", "headersSize": -1, "bodySize": 2}  # fmt: skip
        entries.append(entry)
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                    "entries": entries}}  # fmt: skip
