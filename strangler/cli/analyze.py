"""`strangler analyze`: propose bounded contexts for a Django project, with evidence."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import TYPE_CHECKING

from strangler.cli.errors import UsageError
from strangler_analyzer.render import FORMATS  # pure and light: json and collections only

if TYPE_CHECKING:  # the analyzer is imported only when the command runs
    from strangler_analyzer.boundaries import Boundaries, Problem
    from strangler_analyzer.collect import Progress

SWEEP = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
EPILOG = """\
examples:
  strangler analyze .                          readable summary (progress bar on a terminal)
  strangler analyze src --format html -o contexts.html    clickable context map, offline
  strangler analyze . --json > contexts.json   the JSON contract, byte-identical per input
  strangler analyze . --boundaries boundaries.toml --format md   with your constraints
  strangler analyze . --lock boundaries.toml   pin today's contexts and dependencies
  strangler analyze . --check boundaries.toml  exit 1 if code crosses a declared boundary
  strangler analyze . --git 500                add co-change from the last 500 commits
  strangler analyze . --sweep                  contexts and metrics across resolutions
  strangler analyze . --contexts 10            ask for 10 contexts

boundaries.toml (all sections optional; items are app labels or app_label.Model):
  [clustering]  contexts = 5   resolution = 1.0   seed = 42
                omnipresent_min_apps = 6   # modules using models of 6+ apps: in no context
  [weights]     relation = 5.0   read = 1.0   ...
  [[context]]   name = "ordering"  apps = ["orders"]  models = ["payments.Refund"]
                modules = ["shop.checkout.*"]   # module globs; a model or module pin
                depends_on = ["catalog"]        # wins over its app's; checked by --check
  [[together]]  items = ["orders", "payments"]
  [[apart]]     items = ["orders", "inventory"]

Nothing of the project is imported or run. Facts are cached per file by content hash in the
user cache directory (--cache-dir, --no-cache). See docs/analyzer.md for metrics and ids.
exit codes: 0 ok, 1 --check found violations or files that do not parse, 2 bad input
(including a boundaries file that declares no depends_on: --check would check nothing).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="propose bounded contexts, with file:line evidence for every seam",
        description="Statically analyze a Django project and propose bounded contexts: models "
        "and the code that uses them, the dependencies between contexts with "
        "evidence and how to cut them, metrics against the one-context-per-app "
        "baseline, and an extraction order.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", help="root of the Django project (folder holding your apps)")
    parser.add_argument("--format", "-f", default="text", choices=FORMATS)
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the result to FILE")
    parser.add_argument("--boundaries", metavar="TOML", help="constraints and weights")
    parser.add_argument(
        "--check",
        metavar="TOML",
        help="exit 1 listing dependencies that cross the declared boundaries",
    )
    parser.add_argument(
        "--contexts",
        type=int,
        metavar="N",
        help="propose N contexts (overrides [clustering] contexts)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also compare Louvain resolutions 0.25-3: contexts and metrics for "
        "each, to choose [clustering] resolution or --contexts",
    )
    parser.add_argument(
        "--lock",
        metavar="TOML",
        help="write TOML pinning every model and module where it stands and "
        "allowing today's dependencies (then use it with --check)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel processes for parsing (default: CPU count)",
    )
    parser.add_argument("--cache-dir", metavar="DIR", help="where per-file facts are cached")
    parser.add_argument("--no-cache", action="store_true", help="run cold, write no cache")
    parser.add_argument(
        "--git",
        type=int,
        nargs="?",
        const=300,
        default=0,
        metavar="N",
        help="add co-change coupling from the last N commits (default 300)",
    )
    parser.add_argument("--include-tests", action="store_true", help="analyze test files too")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip paths matching GLOB (relative to PATH); repeatable",
    )
    parser.add_argument(
        "--timings",
        action="store_true",
        help="put stats.seconds in JSON (then it is no longer byte-identical)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.set_defaults(func=run)


def _load_boundaries(path: str) -> tuple[Boundaries, list[Problem]]:
    """The parsed file and its shape problems; a file that is not TOML at all stops here."""
    from strangler_analyzer.api import BoundariesError
    from strangler_analyzer.boundaries import parse_boundaries

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not UTF-8 (byte {error.start}); TOML files are UTF-8, save it as such"
        ) from error
    boundaries, problems = parse_boundaries(text, path)
    if any(p.id == "boundaries.E001" for p in problems):
        raise BoundariesError(path, problems)
    return boundaries, problems


def _progress_bar(enabled: bool) -> Progress | None:
    if not enabled:
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\ranalyzing [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from strangler_analyzer.api import BoundariesError

    fmt = "json" if args.json else args.format
    try:
        return _run(args, fmt)
    except BoundariesError as error:
        if fmt == "json":
            problems = [p.as_json() for p in error.problems]
            sys.stdout.write(json.dumps({"problems": problems}, indent=2, sort_keys=True) + "\n")
        raise UsageError(str(error)) from error


def _run(args: argparse.Namespace, fmt: str) -> int:
    from strangler_analyzer.api import AnalyzeError, BoundariesError, Options, analyze
    from strangler_analyzer.boundaries import Boundaries, Problem
    from strangler_analyzer.collect import default_cache_dir
    from strangler_analyzer.render import render

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.git < 0:
        raise UsageError("--git N must be 0 (off) or a number of commits; try --git 300")
    if args.boundaries and args.check and args.boundaries != args.check:
        raise UsageError("--check already reads its file as boundaries; pass one of them")
    if args.contexts is not None and args.contexts < 1:
        raise UsageError("--contexts N must be at least 1")
    if args.check and args.lock:
        raise UsageError("--lock writes a boundaries file and --check reads one; run them apart")
    boundaries_file = args.check or args.boundaries
    boundaries, problems = (
        _load_boundaries(boundaries_file) if boundaries_file else (Boundaries(), [])
    )
    if args.contexts is not None:
        boundaries = dataclasses.replace(boundaries, target=args.contexts)
    if args.check and not boundaries.checks_anything:
        problems.append(
            Problem(
                "boundaries.E011",
                "no [[context]] declares depends_on, so --check would check nothing",
                f"write one with: strangler analyze {args.path} --lock {args.check}",
                args.check,
                0,
            )
        )
    options = Options(
        path=args.path,
        jobs=args.jobs,
        cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
        include_tests=args.include_tests,
        exclude=tuple(args.exclude),
        boundaries=boundaries,
        git_commits=args.git,
        timings=args.timings,
        boundary_problems=tuple(problems),
        sweep=SWEEP if args.sweep else (),
    )
    show = args.progress if args.progress is not None else (fmt == "text" and sys.stderr.isatty())
    try:
        outcome = analyze(options, progress=_progress_bar(bool(show)))
    except BoundariesError:
        raise
    except AnalyzeError as error:
        raise UsageError(str(error)) from error
    report = outcome.report
    if args.check:
        from strangler_analyzer.check import check, render_check

        result = check(report, boundaries)
        text = (
            json.dumps(result.as_json(), indent=2, sort_keys=True) + "\n"
            if fmt == "json"
            else render_check(result)
        )
        _write(text, args.output)
        return 1 if result.failed else 0
    if args.lock:
        from strangler_analyzer.lock import locked_contexts, render_lock

        _write(render_lock(report, boundaries), args.lock, atomic=True)
        locked = locked_contexts(report)
        summary = {
            "lock": args.lock,
            "contexts": len(locked),
            "models": sum(len(c["models"]) for c in locked.values()),
            "modules": sum(len(c["modules"]) for c in locked.values()),
            "allowed": sum(len(c["depends_on"]) for c in locked.values()),
            "parse_errors": report["stats"]["parse_errors"],
        }
        broken = summary["parse_errors"]
        warning = (
            f"; {_files_not_parsing(len(broken))} ({broken[0]['file']}:{broken[0]['line']}...): "
            "--check fails until they are fixed or excluded with --exclude"
            if broken
            else ""
        )
        _write(
            json.dumps(summary, sort_keys=True) + "\n"
            if fmt == "json"
            else f"locked {summary['contexts']} contexts ({summary['models']} models, "
            f"{summary['modules']} modules, {summary['allowed']} allowed dependencies) "
            f"into {args.lock}; check with --check {args.lock}{warning}\n",
            args.output,
        )
        return 0
    cache_line = (
        f"{outcome.parsed} parsed, {outcome.cached} from cache"
        + (", report reused" if outcome.reused_report else "")
        + (", proposal kept" if outcome.kept_partition and not outcome.reused_report else "")
    )
    _write(render(report, fmt, seconds=outcome.seconds, cache_line=cache_line), args.output)
    return 0


def _files_not_parsing(count: int) -> str:
    return "1 file does not parse" if count == 1 else f"{count} files do not parse"


def _write(text: str, output: str | None, atomic: bool = False) -> None:
    """Write to a file (through a temporary one when ``atomic``: never half a file) or stdout."""
    if output:
        partial = f"{output}.partial" if atomic else output
        try:
            with open(partial, "w", encoding="utf-8") as handle:
                handle.write(text)
            if atomic:
                os.replace(partial, output)
        except OSError as error:
            raise UsageError(f"cannot write {output}: {error.strerror}") from error
    else:
        sys.stdout.write(text)
