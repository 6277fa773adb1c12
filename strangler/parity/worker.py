"""Turn completed pairs (from the proxy's mirror processes) into comparisons in a parity store.

The mirror process beside each proxy worker hands each batch of pairs to what
`local_consumer` builds (the embedded default: a `PairConsumer` comparing into the store) or
`celery_consumer` (production: one Celery task per batch). A pair is plain data
(docs/parity.md), so the proxy needs nothing of this package.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strangler.control.compare import CompareConfig, compare_to_dict, parse_compare
from strangler.parity.compare import Comparer, Comparison, skipped
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.har import HarError, har_entry, read_har_document
from strangler.parity.metrics import ParityMetrics
from strangler.parity.store import ParityStore
from strangler.parity.tally import Tally

Pair = dict[str, Any]
log = logging.getLogger("strangler.parity")


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _headers(raw: Any) -> tuple[tuple[str, str], ...]:
    """Header pairs as text; the proxy hands them over as the bytes it parsed (a pair that
    came as JSON has them as text already)."""
    try:
        return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)
    except AttributeError:
        return tuple((str(k), str(v)) for k, v in raw)


def _reply(raw: dict[str, Any]) -> Reply:
    """A side of a pair; `size` (the whole body's length) beyond the captured body marks it cut."""
    body = raw["body"]
    return Reply(
        status=int(raw["status"]),
        headers=_headers(raw["headers"]),
        body=body,
        latency_ms=float(raw["latency_ms"]),
        base_url=str(raw.get("base_url", "")),
        error=str(raw.get("error", "")),
        truncated=int(raw.get("size", len(body))) > len(body),
    )


def exchange_from_pair(pair: Pair) -> Exchange:
    """The Exchange a pair describes (bodies as bytes)."""
    secondary = pair.get("secondary")
    return Exchange(
        route=pair["route"],
        method=pair["method"],
        path=_text(pair["path"]),
        primary=_reply(pair["primary"]),
        candidate=_reply(pair["candidate"]),
        secondary=_reply(secondary) if secondary else None,
        request_headers=_headers(pair["request_headers"]),
        request_body=pair.get("request_body", b""),
        at=float(pair["at"]),
        redact=tuple(pair.get("redact", ())),
    )


class PairConsumer:
    """Compares batches of pairs and writes them to a store opened on first use."""

    counts_its_losses = True  # a batch the store refused: strangler_parity_lost_pairs_total

    def __init__(self, store_location: str, har_path: str = "") -> None:
        self.store_location = store_location
        self.har_path = har_path
        self.metrics = ParityMetrics()
        self._store: ParityStore | None = None
        self._comparers: dict[CompareConfig, Comparer] = {}
        self._lock = threading.Lock()

    def comparer(self, route: str, config: CompareConfig) -> Comparer:
        """One Comparer per distinct config, so a table change takes effect at once."""
        comparer = self._comparers.get(config)
        if comparer is None:
            comparer = self._comparers[config] = Comparer({})
        if route not in comparer.configs:
            comparer.configs = {**comparer.configs, route: config}
        return comparer

    def __call__(self, batch: list[Pair]) -> None:
        tally = Tally()
        recorded = []
        with self._lock:
            comparisons = []
            for pair in batch:
                comparison = self._compare(pair)
                tally.add(comparison)
                comparisons.append(comparison)
                if pair.get("record") and comparison.exchange is not None:
                    recorded.append(har_entry(comparison.exchange, pair.get("redact", ())))
            self.metrics.observe(comparisons)
            try:
                if self._store is None:
                    self._store = ParityStore(self.store_location)
                self._store.write(tally)
            except Exception:
                for route, n in Counter(str(p["route"]) for p in batch).items():
                    self.metrics.lost.labels(route).inc(n)
                raise
            if recorded and self.har_path:
                try:
                    append_har(Path(self.har_path), recorded)
                except (OSError, HarError) as error:  # the comparisons are stored already
                    log.error("parity worker: %d recorded exchanges not written: %s",
                              len(recorded), error)  # fmt: skip

    def _compare(self, pair: Pair) -> Comparison:
        """One pair compared; a pair the comparison fails on is counted as `compare_failed`
        (logged), so it cannot take the rest of its batch, or the worker, with it."""
        exchange = exchange_from_pair(pair)
        comparer = self.comparer(exchange.route, pair.get("compare") or CompareConfig())
        try:
            return comparer.compare(exchange)
        except Exception:
            log.exception("parity worker: %s %s not compared", exchange.method, exchange.path)
            endpoint = comparer.endpoint(exchange.route, exchange.method, exchange.path)
            return skipped(exchange, endpoint, "compare_failed")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def local_consumer(
    store_location: str, har_path: str, metrics: tuple[str, int] | None, worker: int
) -> PairConsumer:
    """The embedded consumer of proxy worker `worker`, serving its /metrics on PORT+worker."""
    consumer = PairConsumer(store_location, har_path)
    if metrics is not None:
        serve_when_free(consumer.metrics, metrics[0], metrics[1] + worker)
    return consumer


def serve_when_free(metrics: ParityMetrics, host: str, port: int, every: float = 1.0) -> None:
    """Serve /metrics on host:port, or, while the port is taken (the mirror of a killed
    proxy worker still finishing its pairs there), from a thread that tries again every
    `every` s: a busy metrics port costs the counts' visibility, never the comparisons
    (a consumer that raised would take the mirror process down, and every pair with it)."""
    try:
        metrics.serve(host, port)
        return
    except OSError as error:
        log.warning("parity metrics: %s:%d not served yet (%s); trying again every %s s",
                    host, port, error, every)  # fmt: skip

    def retry() -> None:
        while True:
            time.sleep(every)
            try:
                metrics.serve(host, port)
            except OSError:
                continue
            log.info("parity metrics: serving on %s:%d", host, port)
            return

    threading.Thread(target=retry, name="parity-metrics-port", daemon=True).start()


OURS = b'{"log": {"version": "1.2", "creator": {"name": "strangler", '  # entries come last
TAIL = b"]}}"


def append_har(path: Path, entries: list[dict[str, Any]]) -> None:
    """Add entries to a HAR file (created if missing) under an exclusive flock on
    `<file>.lock`: the mirror process of every proxy worker appends to the same file.

    A file this function wrote gets the entries written over its closing `]}}` and a new
    one after them, so an append costs the entries, not the file (a whole rewrite per batch
    made a long recording slower by the hour). The lock file keeps the length of the last
    complete append: a tail torn by a crash mid-write is cut back to it. Any other HAR is
    rewritten whole, atomically.
    """
    if not entries:
        return
    with open(path.with_suffix(path.suffix + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the lock file closes
        lock.seek(0)
        committed = int(lock.read().strip() or 0)
        length = _append_in_place(path, entries, committed)
        if length is None:
            doc = read_har_document(path)
            doc["log"]["entries"].extend(entries)
            data = json.dumps(doc).encode()
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            length = len(data)
        lock.seek(0)
        lock.truncate()
        lock.write(str(length))


def _append_in_place(path: Path, entries: list[dict[str, Any]], committed: int) -> int | None:
    """The file's new length once `entries` are written over its tail; None when the file
    is not one this module wrote (or is missing), for a whole rewrite."""
    try:
        f = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with f:
        if f.read(len(OURS)) != OURS:
            return None
        size = f.seek(0, 2)
        end = size
        f.seek(end - len(TAIL))
        if f.read(len(TAIL)) != TAIL:
            if not committed or committed > size:
                return None
            # A torn append: it wrote from the last complete one's tail on, so what lies
            # before that tail is whole, and the entries go where the tail was.
            end = committed
        f.seek(end - len(TAIL) - 1)
        empty = f.read(1) == b"["
        chunk = b", ".join(json.dumps(entry).encode() for entry in entries)
        f.seek(end - len(TAIL))
        f.write((chunk if empty else b", " + chunk) + TAIL)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def pair_to_json(pair: Pair) -> dict[str, Any]:
    """A pair as JSON-safe data for a Celery message: bodies in base64, compare as a table."""
    out = dict(pair)
    out["request_body"] = base64.b64encode(pair.get("request_body", b"")).decode()
    out["request_headers"] = _headers(pair["request_headers"])
    out["path"] = _text(pair["path"])
    for side in ("primary", "candidate", "secondary"):
        if pair.get(side):
            out[side] = {
                **pair[side],
                "headers": _headers(pair[side]["headers"]),
                "body": base64.b64encode(pair[side]["body"]).decode(),
            }
    out["compare"] = compare_to_dict(pair.get("compare") or CompareConfig())
    out["redact"] = list(pair.get("redact", ()))
    return out


def pair_from_json(data: dict[str, Any]) -> Pair:
    """The inverse of pair_to_json (a compare table from the proxy was validated there)."""
    pair = dict(data)
    pair["request_body"] = base64.b64decode(data.get("request_body", ""))
    for side in ("primary", "candidate", "secondary"):
        if data.get(side):
            pair[side] = {**data[side], "body": base64.b64decode(data[side]["body"])}
    pair["compare"], _ = parse_compare(data.get("compare") or {}, "compare")
    return pair


def celery_consumer(broker_url: str, worker: int = 0) -> Callable[[list[Pair]], None]:
    """A consumer that publishes each batch as one `strangler.parity.compare_pairs` task."""
    from strangler.parity.tasks import make_app

    app = make_app(broker_url)

    def publish(batch: list[Pair]) -> None:
        app.send_task(
            "strangler.parity.compare_pairs",
            args=[[pair_to_json(p) for p in batch]],
            queue=app.conf.task_default_queue,
        )

    return publish
