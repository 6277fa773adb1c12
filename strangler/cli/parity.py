"""`strangler parity`: replay recorded traffic, report parity per endpoint, gate a rollout."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import time
import tomllib
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from strangler.cli.errors import UsageError

EPILOG = """\
examples:
  strangler parity replay traffic.har --primary http://127.0.0.1:8000 \\
      --candidate http://127.0.0.1:8100 --route products --concurrency 8 --rate 200
  strangler parity replay writes.har --primary http://127.0.0.1:8000 \\
      --candidate http://127.0.0.1:8200 --allow-writes http://127.0.0.1:8200
  strangler parity replay shadow.har --primary http://10.0.0.5:8000 \\
      --candidate http://10.0.0.9:8100 --host shop.example.com
  strangler parity report --route products --since 1h
  strangler parity report --route products -f html -o parity.html
  strangler parity report --route products --since 24h --gate 99.5 --min-samples 500
  strangler cdc --settings extracted.catalog_service.settings reconcile --json \\
      | strangler parity record-data --route products -
  strangler parity prune --retention-days 7

The store is --store (a SQLite file, or a postgresql:// URL shared by workers), default
$STRANGLER_PARITY_STORE or ./parity.sqlite3. --since takes 30m, 2h, 7d, an ISO-8601 time
(UTC without a zone) or epoch seconds. Parity is noise-cancelled (docs/parity.md). The gate
passes only with at least --min-samples comparisons at or above --gate percent: too few
samples is inconclusive, and inconclusive is not a pass. Exit codes: 0 ok / gate passed,
1 gate failed or inconclusive, 2 bad usage or bad input (nothing recorded).
"""

SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LATEST_SINCE = 253402300799.0  # 9999-12-31T23:59:59Z, the last time a report can print
KEEP_EVERY_S = 5.0  # a replay writes its comparisons this often (--keep-every)


def parse_since(text: str, now: float) -> float:
    """30m / 2h / 7d ago, an ISO-8601 time (UTC if no zone) or epoch seconds, from 1970 to 9999
    (NaN, infinity or 1e300 would reach the store's queries as no integer can hold them)."""
    since = _since_seconds(text, now)
    if not 0 <= since <= LATEST_SINCE:
        raise UsageError(f"--since {text!r}: not a time from 1970 to 9999")
    return since


def _since_seconds(text: str, now: float) -> float:
    match = SPAN.match(text.strip())
    if match:
        return now - float(match[1]) * SPAN_SECONDS[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(
            f"--since {text!r}: not a time span (30m, 2h, 7d), ISO-8601 time or epoch seconds"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (ValueError, OverflowError):
        return math.inf  # past 9999-12-31 in UTC


def backend_url(text: str, option: str) -> str:
    """A backend base URL, or UsageError saying which option is wrong."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"{option} {text!r}: use http://HOST:PORT (no path)")
    return text.rstrip("/")


def _address(url: str) -> tuple[str, int]:
    """The host (any case) and port a backend URL reaches."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parity",
        help="replay traffic, report response parity, gate a rollout",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        default=os.environ.get("STRANGLER_PARITY_STORE", "parity.sqlite3"),
        help="SQLite file or postgresql:// URL (default $STRANGLER_PARITY_STORE or "
        "./parity.sqlite3)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    replay = actions.add_parser("replay", parents=[common], help="replay a HAR 1.2 file")
    replay.add_argument("har", metavar="FILE.har")
    replay.add_argument("--primary", required=True, help="the monolith: http://HOST:PORT")
    replay.add_argument("--candidate", required=True, help="the service: http://HOST:PORT")
    replay.add_argument(
        "--secondary",
        default="",
        help="a second monolith for noise (default: call --primary twice)",
    )
    replay.add_argument(
        "--host",
        default="",
        help="Host header to send (default: the one each request was recorded with)",
    )
    replay.add_argument("--route", default="replay", help="route name the results count under")
    replay.add_argument("--compare", default="", help="TOML file of normalizers (docs/parity.md)")
    replay.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    replay.add_argument("--rate", type=float, default=0.0, help="requests per second (0 = any)")
    replay.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    replay.add_argument(
        "--start",
        type=int,
        default=0,
        metavar="N",
        help="begin at entry N (from 0): a stopped replay names the N that goes on after it",
    )
    replay.add_argument(
        "--keep-every",
        type=float,
        default=KEEP_EVERY_S,
        metavar="SECONDS",
        help=f"write the comparisons to the store this often while replaying ({KEEP_EVERY_S:g}):"
        " a replay killed with -9 loses at most that much, and its last 'kept entries' line "
        "names the --start to go on with",
    )
    replay.add_argument(
        "--allow-writes",
        default="",
        metavar="SANDBOX",
        help="replay non-safe methods to this URL only (must be --candidate), compared with "
        "the answer recorded in the HAR",
    )

    report = actions.add_parser("report", parents=[common], help="parity per endpoint")
    report.add_argument("--route", default="", help="one route (default: every route)")
    report.add_argument("--since", default="1h", help="start of the span (default 1h)")
    report.add_argument("-f", "--format", choices=("text", "json", "html"), default="text")
    report.add_argument("-o", "--output", default="", help="write the report to FILE")
    report.add_argument("--gate", type=float, default=None, help="pass at or above this %%")
    report.add_argument("--min-samples", type=int, default=500, help="for --gate (500)")
    report.add_argument("--max-drift", type=int, default=None, help="drifted rows allowed")

    data = actions.add_parser(
        "record-data", parents=[common], help="record a CDC reconcile result for a route"
    )
    data.add_argument("--route", required=True)
    data.add_argument("file", help="`strangler cdc reconcile --json` output, or - for stdin")

    prune = actions.add_parser("prune", parents=[common], help="delete old windows now")
    prune.add_argument("--retention-days", type=float, default=7.0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from strangler.parity import StoreError, open_store

    remote = args.store.startswith(("postgres://", "postgresql://"))
    if args.action == "report":
        _check_report_options(args)
        if not remote and not Path(args.store).exists():
            raise UsageError(f"no parity store at {args.store}; pass --store or run a replay")
    if args.action == "replay":
        inputs = _replay_inputs(args)
    if args.action == "prune" and not 0 <= args.retention_days < math.inf:
        raise UsageError(f"--retention-days {args.retention_days:g}: a number of days >= 0")
    try:
        store = open_store(args.store, getattr(args, "retention_days", 7.0))
    except StoreError as error:
        raise UsageError(str(error)) from error
    try:
        if args.action == "replay":
            return _replay(args, store, *inputs)
        if args.action == "report":
            return _report(args, store)
        if args.action == "record-data":
            return _record_data(args, store)
        deleted = store.prune()
        print(json.dumps({"deleted": deleted}) if args.json else f"{deleted} rows deleted")
        return 0
    except StoreError as error:  # the database gone or locked mid-run, a stored result broken
        raise UsageError(str(error)) from error
    finally:
        store.close()


def _load_compare(path: str) -> Any:
    from strangler.control.compare import CompareConfig, parse_compare

    if not path:
        return CompareConfig()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--compare {path}: {error}") from error
    except RecursionError as error:
        raise UsageError(f"--compare {path}: nested too deeply") from error
    config, problems = parse_compare(raw, path)
    if problems:
        raise UsageError("; ".join(str(p) for p in problems))
    return config


def _replay_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from strangler.parity import Comparer
    from strangler.parity.har import HarError, parse_har
    from strangler.parity.replay import Targets

    primary = backend_url(args.primary, "--primary")
    candidate = backend_url(args.candidate, "--candidate")
    secondary = backend_url(args.secondary, "--secondary") if args.secondary else ""
    if _address(candidate) == _address(primary):
        raise UsageError(
            f"--candidate {candidate} is the --primary: the monolith compared with itself "
            "would pass anything; name the service"
        )
    if secondary and _address(secondary) == _address(candidate):
        raise UsageError(
            f"--secondary {secondary} is the --candidate: noise read from it would cancel every "
            "difference it has; name a second monolith, or leave it out (the primary twice)"
        )
    sandbox = backend_url(args.allow_writes, "--allow-writes") if args.allow_writes else ""
    if sandbox and sandbox != candidate:
        raise UsageError(
            f"--allow-writes {sandbox}: writes go only to a sandbox, which must be the "
            f"--candidate ({candidate}); the primary never receives replayed writes"
        )
    if args.concurrency < 1 or args.rate < 0 or args.timeout <= 0 or args.start < 0:
        raise UsageError("--concurrency must be >= 1, --rate >= 0, --timeout > 0, --start >= 0")
    try:
        text = Path(args.har).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {args.har}: {error}") from error
    try:
        requests = parse_har(text, args.har)
    except HarError as error:
        raise UsageError(str(error)) from error
    if not (math.isfinite(args.keep_every) and args.keep_every > 0):
        raise UsageError(f"--keep-every {args.keep_every:g}: a number of seconds above 0")
    if args.start > len(requests):
        raise UsageError(f"--start {args.start}: {args.har} has {len(requests)} entries")
    comparer = Comparer({args.route: _load_compare(args.compare)})
    if args.host and not re.fullmatch(
        r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", args.host
    ):
        raise UsageError(f"--host {args.host!r}: a host name, optionally with :PORT")
    return requests, comparer, Targets(primary, candidate, secondary, sandbox, args.host)


def _progress(done: int, total: int, started: float, last: list[float]) -> None:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""
    now = time.monotonic()
    if done != total and now - last[0] < 0.1:
        return
    last[0] = now
    width = 30
    filled = width * done // max(total, 1)
    rate = done / max(now - started, 1e-6)
    end = "\n" if done == total else ""
    if sys.stderr.isatty() or done == total:
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.0f} req/s",
              end=end, file=sys.stderr, flush=True)  # fmt: skip


def _replay(
    args: argparse.Namespace, store: Any, requests: Any, comparer: Any, targets: Any
) -> int:
    import asyncio

    from strangler.parity.replay import replay

    keeper = Keeper(store, args.store, args.start, args.keep_every)
    started, last, done = time.monotonic(), [0.0], [0]

    def progress(entries_done: int, total: int) -> None:
        done[0] = entries_done
        keeper.entries_done(entries_done)
        if not args.json:
            _progress(entries_done, total, started, last)

    try:
        result = asyncio.run(
            _until_terminated(
                replay(
                    requests[args.start :], targets, comparer, args.route, keeper.add,
                    concurrency=args.concurrency, rate=args.rate, timeout=args.timeout,
                    progress=progress,
                )
            )
        )  # fmt: skip
    except KeyboardInterrupt as stopped:
        keeper.keep(done[0])  # the entries before the first unfinished one are kept
        how = "terminated" if isinstance(stopped, Terminated) else "interrupted"
        resume = args.start + done[0]
        span = f"entries {args.start} to {resume - 1}" if done[0] else "no entry finished"
        print(f"\n{how}: {keeper.comparisons} comparisons kept in {args.store} ({span}); "
              f"go on with --start {resume}", file=sys.stderr)  # fmt: skip
        return 143 if isinstance(stopped, Terminated) else 130
    keeper.keep(done[0])
    notes = _replay_notes(result)
    figures = {
        "entries": result.entries,
        "compared": result.compared,
        "skipped": result.skipped,
        "failures": dict(result.failures),
        "redacted_headers_dropped": dict(result.redacted),
        "notes": notes,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        skipped = ", ".join(f"{n} {why}" for why, n in result.skipped.items()) or "none"
        print(f"{result.compared} of {result.entries} requests compared under route "
              f"{args.route}; skipped: {skipped}")  # fmt: skip
        for note in notes:
            print(note)
        if result.compared:
            print(f"see `strangler parity report --route {args.route} --store {args.store}`")
    return 0 if result.compared else 1


T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM during a replay (a CI job cancelled, `kill`): it stops as Ctrl-C does."""


async def _until_terminated(work: Coroutine[Any, Any, T]) -> T:
    """`work`, cancelled by SIGTERM as asyncio cancels it on Ctrl-C, then Terminated.

    Raised from a signal handler instead, the exception surfaced wherever the loop was, inside
    httpx's task groups too, which wrapped it in an ExceptionGroup: a traceback, nothing kept."""
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = asyncio.Event()

    def terminate() -> None:
        terminated.set()
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await work
    except asyncio.CancelledError:
        if terminated.is_set():
            raise Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


class Keeper:
    """A replay's comparisons, written to the store as it goes (every `every_s`), so a replay
    killed with -9 loses at most the last few seconds and has said where to go on."""

    def __init__(self, store: Any, shown: str, start: int, every_s: float) -> None:
        from strangler.parity.tally import Tally

        self.store, self.shown, self.start, self.every_s = store, shown, start, every_s
        self.tally = Tally()
        self.comparisons = 0  # written so far
        self.kept_through = start  # the entries before this one are written
        self.kept_at = time.monotonic()

    def add(self, comparison: Any) -> None:
        self.tally.add(comparison)

    def entries_done(self, done: int) -> None:
        """The first `done` entries (from --start) have their comparisons added."""
        if time.monotonic() - self.kept_at >= self.every_s:
            self.keep(done)
            print(f"\nkept entries {self.start} to {self.start + done - 1} in {self.shown} "
                  f"(killed now, go on with --start {self.start + done})",
                  file=sys.stderr, flush=True)  # fmt: skip

    def keep(self, done: int) -> None:
        """Write what the first `done` entries added; a store that fails (its database gone)
        says what is lost, and where to go on if some was written before."""
        from strangler.parity import StoreError
        from strangler.parity.tally import Tally

        self.kept_at = time.monotonic()
        if self.tally:
            try:
                self.store.write(self.tally)
            except StoreError as error:
                earlier = (
                    f"; entries {self.start} to {self.kept_through - 1} were kept before: go on "
                    f"with --start {self.kept_through} once the store answers"
                    if self.kept_through > self.start
                    else ""
                )
                raise UsageError(
                    f"{self.tally.comparisons} comparisons not kept: {error}{earlier}"
                ) from error
            self.comparisons += self.tally.comparisons
            self.tally = Tally()
        self.kept_through = self.start + done


def _replay_notes(result: Any) -> list[str]:
    """Lines a user must read: nothing compared, failures with their text, headers dropped."""
    notes = []
    if not result.compared:
        notes.append(f"nothing compared: none of the {result.entries} requests gave a pair")
    for failure, n in result.failures.most_common(5):
        notes.append(f"{n} x {failure}")
    if result.redacted:
        names = ", ".join(sorted(result.redacted))
        notes.append(f"warning: recorded as [redacted], not sent: {names} (requests needing "
                     "them answer as if anonymous)")  # fmt: skip
    statuses = result.primary_statuses
    if statuses and not any(0 < s < 400 for s in statuses):
        seen = ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items()))
        notes.append(f"warning: the primary answered no request below 400 ({seen}); the "
                     "same error on both sides is not parity (a gate is inconclusive)")  # fmt: skip
    return notes


def _check_report_options(args: argparse.Namespace) -> None:
    """The options' own errors, said before anything about the store."""
    parse_since(args.since, time.time())
    if args.gate is not None and not 0 <= args.gate <= 100:
        raise UsageError(f"--gate {args.gate}: a parity percentage from 0 to 100")
    if args.min_samples < 1 or (args.max_drift is not None and args.max_drift < 0):
        raise UsageError("--min-samples must be at least 1 and --max-drift at least 0")


def _report(args: argparse.Namespace, store: Any) -> int:
    from strangler.parity import evaluate_gate, summary
    from strangler.parity.report import render_html, render_json, render_text

    since = parse_since(args.since, time.time())
    known = store.routes(0)
    if args.route and args.route not in known:
        raise UsageError(
            f"no comparisons recorded for route {args.route!r} in {args.store} "
            f"(routes there: {', '.join(known) or 'none'})"
        )
    routes = [args.route] if args.route else store.routes(since)
    summaries = [summary(store, r, since, examples=args.format == "html") for r in routes]
    gate_line, code = "", 0
    if args.gate is not None:
        if not args.route:
            raise UsageError("--gate needs --route: a gate judges one route")
        result = evaluate_gate(summaries[0], args.gate, args.min_samples, args.max_drift)
        gate_line, code = result.line, 0 if result.passed else 1
    fmt = "json" if args.json else args.format
    if fmt == "json":
        doc = json.loads(render_json(summaries))
        if gate_line:
            doc["gate"] = {"outcome": gate_line.split(":", 1)[0], "line": gate_line}
        text = json.dumps(doc, indent=2)
    elif fmt == "html":
        text = render_html(summaries, gate_line)
    else:
        text = render_text(summaries) + (f"\n{gate_line}" if gate_line else "")
    if args.output:
        try:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write -o {args.output}: {error.strerror}") from error
        if gate_line:
            print(gate_line)
    else:
        print(text)
    return code


def _record_data(args: argparse.Namespace, store: Any) -> int:
    from strangler.parity.summary import reconcile_problems

    source = sys.stdin.read() if args.file == "-" else _read(args.file)
    try:
        result = json.loads(source)
    except ValueError as error:
        raise UsageError(
            f"{args.file}: not JSON ({error}); pass `cdc reconcile --json` output"
        ) from error
    except RecursionError as error:
        raise UsageError(f"{args.file}: not JSON (nested too deeply)") from error
    problems = reconcile_problems(result)
    if problems:
        raise UsageError(
            f"{args.file}: not `strangler cdc reconcile --json` output: {'; '.join(problems)}"
        )
    store.record_data(args.route, result)
    drifted = result["drifted"]
    print(json.dumps({"route": args.route, "drifted": drifted}) if args.json
          else f"recorded reconcile result for route {args.route}: {drifted} drifted")  # fmt: skip
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from error
