"""Shared pieces of the long-running loops: graceful stop, backoff, metrics endpoint."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server


@dataclass
class Stopper:
    """Set by SIGTERM/SIGINT (or by code); loops check it between batches, never mid-batch."""

    event: threading.Event = field(default_factory=threading.Event)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.event.set())

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def stop(self) -> None:
        self.event.set()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when it is time to stop."""
        return self.event.wait(seconds)


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff: base, 2*base, 4*base ... capped."""
    return min(cap_s, base_s * (2 ** max(0, attempt - 1)))


def serve_metrics(port: int | None, registry: CollectorRegistry) -> None:
    """Expose `registry` over HTTP for Prometheus when a port is given (0 = no endpoint)."""
    if port:
        start_http_server(port, addr="0.0.0.0", registry=registry)


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def log_json_lines(level: int = logging.INFO) -> None:
    """Send the strangler.cdc loggers to stderr as JSON lines (for log shippers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("strangler.cdc")
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
