"""The `strangler` console script: one subcommand per job, each in its own module.

Exit codes are part of the contract: 0 ok, 1 a gate or check failed, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from strangler import __version__
from strangler.cli.errors import UsageError

# Each name is a module `strangler.cli.<name>` exposing `add_parser(subparsers)`.
SUBCOMMANDS: tuple[str, ...] = (
    "analyze",
    "route",
    "proxy",
    "dashboard",
    "cdc",
    "parity",
    "runbook",
    "demo",
)

DESCRIPTION = """\
Strangle a Django monolith into services:

  analyze   propose bounded contexts, with file:line evidence for every seam
  route     show and flip the strangler proxy's route weights (versioned, audited)
  proxy     run the strangler proxy in front of the monolith
  dashboard the migration dashboard: routes, live split, CDC, history; flip from the page
  cdc       change-data capture: relay, consume, snapshot, reconcile
  parity    replay traffic, report response parity per endpoint, gate a rollout
  runbook   run migration runbooks whose gates the toolkit checks (resumable, audited)
  demo      run the whole story on the bundled reference monolith

Every subcommand has --help; most take --json for machine-readable output.
Exit codes: 0 ok, 1 a gate or check failed, 2 bad usage or bad input.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"strangler {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"strangler.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a reader gone away (`| head`) is seen here, not at exit
    except BrokenPipeError:
        # Nothing more can be said on stdout, and the interpreter's own flush at exit must
        # not fail again: point stdout at /dev/null and end as SIGPIPE would have (128 + 13).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"strangler {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
