"""`strangler demo`: run the migration story end to end on the bundled reference monolith."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from strangler.cli.errors import UsageError
from strangler.demo import STEPS
from strangler.demo.reference import DemoUnavailable, demo_ready
from strangler.demo.runner import fresh_work_dir, load_steps, run_demo

EPILOG = """\
steps, in order:
  {steps}

examples:
  strangler demo                          # the whole story, in ./.demo
  strangler demo --list                   # what each step does
  strangler demo --steps database,monolith,checkout
  strangler demo --work-dir /tmp/shop --json > facts.json
  strangler demo --keep-running           # then explore the running stack; Ctrl-C ends it

The work dir is deleted and recreated on each run (only if the demo created it).
Every process the demo starts is stopped when it ends, also on failure or Ctrl-C.
Exit codes: 0 every step succeeded, 1 a step failed (its message says why), 2 bad usage.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole story on the bundled reference monolith",
        description=__doc__,
        epilog=EPILOG.format(steps=" -> ".join(STEPS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--work-dir", type=Path, default=Path(".demo"), help="scratch directory (default: ./.demo)"
    )
    parser.add_argument(
        "--steps", default="", help="comma-separated subset of the steps to run, in STEPS order"
    )
    parser.add_argument("--list", action="store_true", help="list the steps and exit")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the last step, keep the monolith (and all else) up until Ctrl-C",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the facts the steps gathered as JSON at the end"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        reference = demo_ready()  # before the steps are imported: they need the [demo] extra
    except DemoUnavailable as error:
        raise UsageError(str(error)) from error
    names = [name.strip() for name in args.steps.split(",") if name.strip()]
    try:
        steps = load_steps(names)
    except ValueError as error:
        raise UsageError(f"--steps: {error}") from error
    if args.list:
        for step in steps:
            print(f"{step.name:12} {step.title}")
        return 0
    try:
        work_dir = fresh_work_dir(args.work_dir)
    except ValueError as error:
        raise UsageError(f"--work-dir: {error}") from error
    out = sys.stderr if args.json else sys.stdout
    code, facts = run_demo(steps, work_dir, out, reference, keep_running=args.keep_running)
    if args.json:
        print(json.dumps({"ok": code == 0, "facts": facts}, indent=2, sort_keys=True, default=str))
    return code
