"""`strangler proxy`: run the strangler proxy in front of the monolith."""

from __future__ import annotations

import argparse
import functools
import logging
import os
from pathlib import Path
from typing import Any

from strangler.cli.errors import UsageError

EPILOG = """\
examples:
  strangler proxy --config routes.toml
  strangler proxy --config routes.toml --listen 0.0.0.0:8080 --workers 2
  STRANGLER_ADMIN_TOKEN=s3cret strangler proxy --database-url postgresql://127.0.0.1/routes
  strangler proxy --config routes.toml --parity-store parity.sqlite3 --record-har shadow.har
  strangler proxy --config routes.toml --parity-broker redis://127.0.0.1:6379/0

Routes with a shadow policy (`strangler route shadow ROUTE PERCENT`) also send that share of
their requests to the candidate after the client has its answer. A mirror process beside
each worker makes those calls and compares the pairs into --parity-store (embedded
default), or publishes them to Celery with --parity-broker (`celery -A
strangler.parity.tasks worker`, store in $STRANGLER_PARITY_STORE).

The route table comes from a TOML/JSON file (hot-reloaded when it changes) or from
PostgreSQL (shared by replicas); without either option, from $STRANGLER_ROUTES. Flip
weights with `strangler route weight ROUTE N` or the admin API (127.0.0.1:8081 by
default: /api/..., /metrics, /healthz). The admin API needs the token in
$STRANGLER_ADMIN_TOKEN (or --admin-token-file); without one it answers 401.
On start the proxy prints one JSON line: {"event": "listening", "proxy": ..., "admin": ...,
"pid": ...}; with --workers the pid is the supervisor's, which restarts a worker that dies.
SIGTERM or Ctrl-C stops accepting, finishes in-flight requests (up to --grace s), then exits:
0, or 1 when the grace period ran out and requests were cut (the log says how many).
Client timeouts and the per-worker connection limit are the table's settings
(client_header_timeout, client_body_timeout, max_connections; docs/proxy.md).
"""


def parse_address(value: str, what: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{what} {value!r} is not HOST:PORT; e.g. 127.0.0.1:8080")
    return host, int(port)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="run the strangler proxy",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="route table file (.toml or .json)")
    source.add_argument("--database-url", help="postgresql:// URL of the shared route store")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT for traffic")
    parser.add_argument(
        "--admin",
        default="127.0.0.1:8081",
        help="HOST:PORT for the admin API and /metrics, or 'off'",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes sharing --listen")
    parser.add_argument(
        "--access-log", default="-", help="JSON access log: '-' stdout, a file path, or 'off'"
    )
    parser.add_argument("--admin-token-file", help="file holding the admin API token")
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds to let in-flight requests finish on shutdown",
    )
    parity = parser.add_mutually_exclusive_group()
    parity.add_argument(
        "--parity-store",
        default=os.environ.get("STRANGLER_PARITY_STORE", "parity.sqlite3"),
        help="where shadowed pairs are compared into (SQLite file or postgresql:// URL)",
    )
    parity.add_argument(
        "--parity-broker", default="", help="redis:// URL: publish pairs to Celery workers"
    )
    parser.add_argument(
        "--record-har", default="", help="append the routes' record_percent share to this HAR"
    )
    parser.add_argument(
        "--parity-metrics",
        default="",
        metavar="HOST:PORT",
        help="where the comparisons serve /metrics (worker N of --workers: PORT+N)",
    )
    parser.set_defaults(func=run)


def _pair_consumer(args: argparse.Namespace) -> Any:
    """What each worker's mirror process hands completed pairs to, built there (a partial,
    because the mirror process is spawned and this travels to it pickled)."""
    from strangler.parity.worker import celery_consumer, local_consumer

    if args.parity_broker:
        return functools.partial(celery_consumer, args.parity_broker)
    metrics = None
    if args.parity_metrics:
        metrics = parse_address(args.parity_metrics, "--parity-metrics")
    return functools.partial(local_consumer, args.parity_store, args.record_har, metrics)


def run(args: argparse.Namespace) -> int:
    from strangler.control import ValidationFailed
    from strangler.control.store import StoreUnavailable
    from strangler.proxy.runner import ProxyOptions
    from strangler.proxy.runner import run as run_proxy

    store = args.config or args.database_url or os.environ.get("STRANGLER_ROUTES", "")
    if not store:
        raise UsageError(
            "no route store: pass --config FILE or --database-url URL (or set $STRANGLER_ROUTES)"
        )
    host, port = parse_address(args.listen, "--listen")
    admin_host, admin_port = (
        (None, None) if args.admin == "off" else parse_address(args.admin, "--admin")
    )
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    token = os.environ.get("STRANGLER_ADMIN_TOKEN", "")
    if args.admin_token_file:
        try:
            with open(args.admin_token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as error:
            raise UsageError(f"cannot read --admin-token-file: {error}") from error
    if args.record_har and args.parity_broker:
        raise UsageError("--record-har works with --parity-store (the embedded consumer)")
    for option, path in (("--parity-store", args.parity_store), ("--record-har", args.record_har)):
        folder = Path(path).resolve().parent
        if (
            path
            and not path.startswith(("postgres://", "postgresql://"))
            and not (folder.is_dir() and os.access(folder, os.W_OK))
        ):
            raise UsageError(f"{option} {path}: folder {folder} is missing or not writable")
    if args.record_har:
        from strangler.parity.har import HarError, read_har_document

        try:
            read_har_document(Path(args.record_har))
        except HarError as error:
            raise UsageError(f"--record-har {error}") from error
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = ProxyOptions(
        store=store,
        host=host,
        port=port,
        admin_host=admin_host or "127.0.0.1",
        admin_port=admin_port,
        workers=args.workers,
        access_log=args.access_log,
        admin_token=token,
        grace=args.grace,
        pair_consumer=_pair_consumer(args),
    )
    try:
        return run_proxy(options)
    except ValidationFailed as rejected:
        raise UsageError(f"route table rejected:\n{rejected}") from rejected
    except (LookupError, StoreUnavailable) as missing:
        raise UsageError(str(missing)) from missing
    except OSError as error:
        raise UsageError(f"cannot start: {error}") from error
