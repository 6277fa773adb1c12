"""`strangler route`: show and flip the proxy's route table (versioned, audited)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from strangler.cli.errors import UsageError

EPILOG = """\
examples:
  strangler route list --config routes.toml
  strangler route weight products 25 --config routes.toml --why "canary looks healthy"
  strangler route show products --config routes.toml --json
  strangler route set new-routes.toml --config routes.toml --why "add orders route"
  strangler route set new-routes.toml --config routes.toml --dry-run
  strangler route set new-routes.toml --config routes.toml --expect 7   # only over version 7
  strangler route set seed.toml --database-url postgresql://127.0.0.1/routes --if-empty
  strangler route history --config routes.toml
  strangler route rollback 3 --config routes.toml --why "errors on the service"
  strangler route shadow products 10 --config routes.toml --why "parity before the canary"
  strangler route shadow products 5 --secondary monolith-b --config routes.toml
  strangler route shadow products 0 --config routes.toml      # stop shadowing
  strangler route list --database-url postgresql://127.0.0.1/routes

The store is --config FILE, --database-url URL, or $STRANGLER_ROUTES. Every change is
validated as a whole first: if anything is wrong, every problem is printed with its id
(route.E0xx, see docs/control.md), the exit code is 2, and nothing changes. Running proxies
pick up an accepted change within a second. A weight flip lands on top of changes to other
routes made meanwhile; if someone changed the same route since it was read, it is refused
with the version that did it. Exit codes: 0 ok, 1 the table (or the flipped route) changed
under you (re-run), 2 bad input.
"""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    source = common.add_mutually_exclusive_group()
    source.add_argument("--config", help="route table file (.toml or .json)")
    source.add_argument("--database-url", help="postgresql:// URL of the shared route store")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--who", default="", help="actor for the audit log (default user@host)")
    common.add_argument("--why", default="", help="reason recorded in the audit log")
    return common


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "route",
        help="show and flip route weights",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = _common()
    actions.add_parser("list", parents=[common], help="every route, its state and weight")
    show = actions.add_parser("show", parents=[common], help="one route in full")
    show.add_argument("route")
    set_ = actions.add_parser("set", parents=[common], help="push a whole table from a file")
    set_.add_argument("file")
    set_.add_argument("--dry-run", action="store_true", help="validate only")
    set_.add_argument(
        "--if-empty", action="store_true", help="only when the store has no table yet (seeding)"
    )
    set_.add_argument(
        "--expect",
        type=int,
        metavar="VERSION",
        help="only if the table is still at VERSION (exit 1 and nothing changed otherwise)",
    )
    weight = actions.add_parser(
        "weight", parents=[common], help="set a route's service weight (0-100, two decimals)"
    )
    weight.add_argument("route")
    weight.add_argument("weight")
    shadow = actions.add_parser(
        "shadow",
        parents=[common],
        help="set the share of a route's requests also sent to its candidate (0-100)",
    )
    shadow.add_argument("route")
    shadow.add_argument("percent")
    shadow.add_argument("--candidate", help="backend to shadow onto (default: the service)")
    shadow.add_argument(
        "--secondary", help="second monolith backend for noise (default: a second monolith call)"
    )
    history = actions.add_parser("history", parents=[common], help="versions, newest first")
    history.add_argument("--limit", type=int, default=20)
    rollback = actions.add_parser(
        "rollback", parents=[common], help="make an earlier version current again"
    )
    rollback.add_argument("version", type=int)
    parser.set_defaults(func=run)


def _store(args: argparse.Namespace) -> Any:
    from strangler.control import open_store

    location = args.config or args.database_url or os.environ.get("STRANGLER_ROUTES", "")
    if not location:
        raise UsageError(
            "no route store: pass --config FILE or --database-url URL (or set $STRANGLER_ROUTES)"
        )
    if (
        not location.startswith(("postgresql://", "postgres://"))
        and args.action != "set"
        and not Path(location).exists()
    ):
        raise UsageError(
            f"route table file {location} does not exist; create it with "
            f"`strangler route set FILE --config {location}`"
        )
    return open_store(location)


def shadow_reach(entry: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(share asked for, share that can be shadowed) of a route's requests, in percent.

    Only requests the monolith answers are shadowed, so the reach is what the weight leaves
    the monolith: all of the share for state monolith, none for service or retired.
    """
    percent = Decimal(str((entry.get("shadow") or {}).get("percent", 0)))
    left = {"monolith": Decimal(100), "service": Decimal(0), "retired": Decimal(0)}.get(
        entry["state"], 100 - Decimal(str(entry["weight"]))
    )
    return percent, min(percent, left)


def _shadow_text(row: dict[str, Any]) -> str:
    percent, reach = row["shadow_percent"], row["shadow_reachable_percent"]
    if not percent:
        return "-"
    return f"{percent}%" if reach == percent else f"{percent}% ({reach}% reachable)"


def _route_rows(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """What `route list` shows of each route, as JSON-ready rows."""
    from strangler.control.model import weight_number

    rows = []
    for r in raw["routes"]:
        match = r.get("prefix") or f"~{r.get('regex')}"
        if r.get("methods"):
            match += f" [{','.join(r['methods'])}]"
        percent, reach = shadow_reach(r)
        rows.append(
            {
                "id": r["id"],
                "match": match,
                "state": r["state"],
                "weight": r["weight"],
                "monolith": r["monolith"],
                "service": r["service"],
                "shadow_percent": weight_number(percent),
                "shadow_reachable_percent": weight_number(reach),
            }
        )
    return rows


def _print_routes(number: int, raw: dict[str, Any]) -> None:
    print(f"route table version {number}; unknown paths go to {raw['default_backend']}")
    rows = [("ROUTE", "MATCH", "STATE", "WEIGHT", "SHADOW", "MONOLITH -> SERVICE")]
    for info in _route_rows(raw):
        rows.append(
            (
                info["id"],
                info["match"],
                info["state"],
                f"{info['weight']}%",
                _shadow_text(info),
                f"{info['monolith']} -> {info['service']}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run(args: argparse.Namespace) -> int:
    import psycopg

    from strangler.control import ValidationFailed
    from strangler.control.store import (
        ConcurrentChange,
        StoreUnavailable,
        read_table_file,
        validated,
    )

    try:
        if args.action == "set" and args.dry_run:
            validated(read_table_file(Path(args.file)))
            print(json.dumps({"valid": True}) if args.json else f"{args.file}: valid")
            return 0
        store = _store(args)
        try:
            return _act(args, store, read_table_file)
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()
    except ValidationFailed as rejected:
        if args.json:
            print(
                json.dumps(
                    {"valid": False, "errors": [m.as_dict() for m in rejected.messages]}, indent=2
                )
            )
        for message in rejected.messages:
            print(f"strangler route: {message}", file=sys.stderr)
        print("strangler route: nothing changed", file=sys.stderr)
        return 2
    except ConcurrentChange as conflict:
        if args.json:
            print(json.dumps({"changed": False, "conflict": str(conflict)}))
        print(f"strangler route: {conflict}; nothing changed, re-run", file=sys.stderr)
        return 1
    except (LookupError, StoreUnavailable, psycopg.OperationalError) as error:
        raise UsageError(str(error).strip()) from error


def _act(args: argparse.Namespace, store: Any, read_table_file: Any) -> int:
    from strangler.control.admin import version_json

    if args.action in ("list", "show"):
        current = store.current()
        if args.action == "show":
            entry = next((r for r in current.raw["routes"] if r["id"] == args.route), None)
            if entry is None:
                raise UsageError(f"no route {args.route!r}; see `strangler route list`")
            print(json.dumps({"version": current.number, "route": entry}, indent=2))
        elif args.json:
            print(
                json.dumps(version_json(current) | {"routes": _route_rows(current.raw)}, indent=2)
            )
        else:
            _print_routes(current.number, current.raw)
        return 0
    if args.action == "history":
        versions = store.history(args.limit)
        if args.json:
            print(
                json.dumps(
                    {
                        "versions": [
                            version_json(v, with_table=False) | {"before": v.before, "after": v.raw}
                            for v in versions
                        ]
                    },
                    indent=2,
                )
            )
        for v in [] if args.json else versions:
            print(f"v{v.number}  {v.at}  {v.who}  {v.why}")
        return 0
    if args.action == "set" and args.if_empty and not store.is_empty():
        current = store.current()
        print(
            json.dumps({"version": current.number, "changed": False})
            if args.json
            else f"route table version {current.number} already stored; nothing changed"
        )
        return 0
    if args.action == "set":
        version = store.apply(
            read_table_file(Path(args.file)), args.who, args.why, expect=args.expect
        )
    elif args.action == "weight":
        version = store.set_weight(args.route, args.weight, args.who, args.why)
    elif args.action == "shadow":
        policy = {k: getattr(args, k) for k in ("candidate", "secondary") if getattr(args, k)}
        version = store.set_shadow(args.route, args.percent, args.who, args.why, **policy)
    else:
        version = store.rollback(args.version, args.who, args.why)
    warning = _shadow_warning(version.raw, args.route) if args.action == "shadow" else ""
    if args.json:
        print(json.dumps(version.summary() | ({"warning": warning} if warning else {})))
    else:
        print(f"route table version {version.number} accepted ({version.why or args.action})")
    if warning:
        print(f"strangler route: warning: {warning}", file=sys.stderr)
    return 0


def _shadow_warning(raw: dict[str, Any], route_id: str) -> str:
    """Why a shadow share just set will shadow less than asked, or "" when it will not."""
    entry = next(r for r in raw["routes"] if r["id"] == route_id)
    percent, reach = shadow_reach(entry)
    if reach == percent:
        return ""
    where = f"route {route_id} is at weight {entry['weight']} (state {entry['state']})"
    why = "only requests the monolith answers are shadowed"
    if not reach:
        return f"{where}: {why}, so this shadows nothing until its weight goes down"
    return f"{where}: {why}, so at most {reach}% of its requests are shadowed, not {percent}%"
