"""`strangler dashboard`: the migration dashboard, served next to the proxy."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from strangler.cli.errors import UsageError
from strangler.cli.proxy import parse_address
from strangler.cli.store import add_store_options, store_location

if TYPE_CHECKING:
    from strangler.control import RouteStore

EPILOG = """\
examples:
  STRANGLER_ADMIN_TOKEN=s3cret strangler dashboard --config routes.toml
  strangler dashboard --config routes.toml --proxy-admin http://127.0.0.1:8081 \\
      --proxy-admin http://10.0.0.7:8081 --admin-token-file token.txt
  strangler dashboard --database-url postgresql://127.0.0.1/routes \\
      --cdc-settings monolith.settings --cdc-settings extracted.catalog_service.settings \\
      --reconcile-report reconcile.json --report report.html --listen 127.0.0.1:8082 \\
      --runbook-store strangler-runs.sqlite3 --parity-store parity.sqlite3

Open the printed URL and sign in with the admin token (the one the proxy's admin API uses)
and your name, which the audit log records with every change. The page reads every
--proxy-admin replica's /metrics (summed), the route table and its history, CDC status,
parity and runbook runs; weight changes and rollbacks go through the same validated, audited path as
`strangler route`, approving or aborting a run through `strangler runbook`. Bound to
127.0.0.1 by default. On start it prints where it listens (one JSON line with --json).
Exit codes: 0 stopped cleanly, 2 bad usage or bad input.
"""

LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="the migration dashboard (routes, live split, CDC, history)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_options(parser)
    parser.add_argument(
        "--proxy-admin",
        action="append",
        default=[],
        metavar="URL",
        help="a proxy replica's admin URL (repeat for each; default http://127.0.0.1:8081)",
    )
    parser.add_argument("--listen", default="127.0.0.1:8082", help="HOST:PORT for the page")
    parser.add_argument("--admin-token-file", help="file holding the admin token")
    parser.add_argument(
        "--cdc-settings",
        action="append",
        default=[],
        metavar="MODULE",
        help="a Django project whose `strangler cdc status` to show (repeatable)",
    )
    parser.add_argument(
        "--reconcile-report",
        type=Path,
        help="file where `strangler cdc reconcile --json` output is kept",
    )
    parser.add_argument("--report", type=Path, help="the analyzer's HTML report")
    parser.add_argument(
        "--runbook-store",
        default=os.environ.get("STRANGLER_RUNBOOK_STORE", ""),
        metavar="LOCATION",
        help="runbook runs to show (SQLite file or postgresql:// URL; "
        "default $STRANGLER_RUNBOOK_STORE)",
    )
    parser.add_argument(
        "--parity-store",
        default=os.environ.get("STRANGLER_PARITY_STORE", ""),
        metavar="LOCATION",
        help="parity results to show (SQLite file or postgresql:// URL; "
        "default $STRANGLER_PARITY_STORE)",
    )
    parser.add_argument("--json", action="store_true", help="print the start line as JSON")
    parser.set_defaults(func=run)


def admin_url_problem(url: str) -> str:
    """Why URL is not a proxy admin URL (http://HOST:PORT), or ''."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--proxy-admin {url!r} is not http://HOST:PORT"
    if parts.username or parts.password or parts.query or parts.path not in ("", "/"):
        return f"--proxy-admin {url!r}: only http://HOST:PORT, no path, query or credentials"
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"--proxy-admin {url!r} has a bad port"
    return ""


def read_token(token_file: str | None) -> str:
    if token_file:
        try:
            return Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UsageError(f"cannot read --admin-token-file: {error}") from error
    return os.environ.get("STRANGLER_ADMIN_TOKEN", "")


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from strangler.control import ValidationFailed, open_store
    from strangler.control.store import StoreUnavailable

    problems = [p for p in map(admin_url_problem, args.proxy_admin) if p]
    try:
        location = store_location(args)
        if (
            not location.startswith(("postgresql://", "postgres://"))
            and not Path(location).exists()
        ):
            problems.append(f"route table file {location} does not exist")
    except UsageError as missing:
        location = ""
        problems.append(str(missing))
    if args.report is not None and not args.report.is_file():
        problems.append(f"--report {args.report} is not a file (write it with `strangler analyze`)")
    token = read_token(args.admin_token_file)
    if not token:
        problems.append(
            "no admin token: set $STRANGLER_ADMIN_TOKEN or pass --admin-token-file "
            "(sign-ins are checked against it)"
        )
    try:
        host, port = parse_address(args.listen, "--listen")
    except UsageError as bad:
        problems.append(str(bad))
    if problems:
        raise UsageError("\nstrangler dashboard: error: ".join(problems))
    try:
        store = open_store(location)
    except (StoreUnavailable, ValidationFailed) as error:
        raise UsageError(str(error)) from error
    try:
        sock = socket.create_server((host, port))
    except OSError as error:
        raise UsageError(f"cannot listen on {args.listen}: {error.strerror}") from error
    return serve(args, store, token, sock)


def serve(args: argparse.Namespace, store: RouteStore, token: str, sock: socket.socket) -> int:
    import uvicorn

    from strangler.dashboard import DashboardConfig, create_app

    host, port = sock.getsockname()[:2]
    loopback = is_loopback(host)
    if not loopback:
        print(
            f"strangler dashboard: warning: listening on {host}, reachable from the network; "
            "the admin token is all that protects the route table",
            file=sys.stderr,
        )
    config = DashboardConfig(
        store=store,
        token=token,
        proxy_admin_urls=[u.rstrip("/") for u in args.proxy_admin] or ["http://127.0.0.1:8081"],
        cdc_settings=args.cdc_settings,
        reconcile_report=args.reconcile_report,
        analyzer_report=args.report,
        runbook_store=args.runbook_store,
        parity_store=args.parity_store,
        allowed_hosts=LOOPBACK_HOSTS if loopback else ["*"],
    )
    url = f"http://{host}:{port}/"
    if args.json:
        print(json.dumps({"event": "listening", "dashboard": url}), flush=True)
    else:
        print(f"dashboard on {url} (sign in with the admin token); Ctrl-C stops it", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", lifespan="on", access_log=False)
    )
    with sock:
        server.run(sockets=[sock])
    return 0
