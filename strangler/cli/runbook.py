"""`strangler runbook`: migration runbooks whose gates the toolkit checks; resumable, audited."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from typing import Any

from strangler.cli.errors import UsageError

EPILOG = """\
examples:
  strangler runbook validate extract-context                 # a built-in, or a .toml file
  strangler runbook plan extract-context -p route=products -p tables=catalog_product \\
      -p boundaries=boundaries.toml
  strangler runbook run extract-context -p route=products \\
      -p tables=catalog_category,catalog_product -p boundaries=boundaries.toml \\
      --routes routes.toml --metrics http://127.0.0.1:8081/metrics \\
      --metrics http://10.0.0.2:8081/metrics \\
      --source-settings monolith.settings --target-settings extracted.catalog_service.settings \\
      --parity-store parity.sqlite3 --monolith-source ./monolith --why "extract the catalog"
  strangler runbook run rollback-route -p route=products --routes routes.toml \\
      --prometheus http://prometheus:9090 --why "5xx on the service"
  strangler runbook run my-runbook.toml ... --dry-run         # validate, bind, show; run nothing
  strangler runbook status RUN_ID                              # steps, gate readings, decisions
  strangler runbook approve RUN_ID --why "reverse CDC deployed and healthy"
  strangler runbook resume RUN_ID                              # after a pause, a fix or a crash
  strangler runbook rollback RUN_ID --why "latency spike"      # undo the latest flip, pause
  strangler runbook abort RUN_ID --why "postponed"
  strangler runbook history

Runs are kept in --store (SQLite file, default ./strangler-runs.sqlite3 or
$STRANGLER_RUNBOOK_STORE; a postgresql:// URL for a shared store). Built-in runbooks:
extract-context, rollback-route (docs/runbooks/). Definition problems are printed with their
ids (runbook.E0xx, see docs/runbook.md) and nothing runs.
Exit codes: 0 done / ok, 1 the run paused (a gate failed, or someone else changed its route)
or was aborted, or another active run moves the same route, 2 bad usage or input.
"""

DEFAULT_STORE = "strangler-runs.sqlite3"


def _examples(action: str) -> str:
    """The epilog of `strangler runbook ACTION --help`: its lines of the examples above."""
    lines = EPILOG.split("\n\n", 1)[0].splitlines()[1:]
    picked, keep = [], False
    for line in lines:
        if line.startswith("  strangler runbook "):
            keep = line.split()[2] == action
        if keep:
            picked.append(line)
    return "examples:\n" + "\n".join(picked)


def _action(actions: Any, name: str, parent: argparse.ArgumentParser, help_: str) -> Any:
    return actions.add_parser(
        name,
        parents=[parent],
        help=help_,
        epilog=_examples(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _common(with_params: bool = False, with_store: bool = True) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    if with_store:
        common.add_argument(
            "--store",
            default=os.environ.get("STRANGLER_RUNBOOK_STORE", ""),
            help=f"run store: SQLite file or postgresql:// URL "
            f"(default $STRANGLER_RUNBOOK_STORE or ./{DEFAULT_STORE})",
        )
        common.add_argument("--who", default="", help="actor for the record (default user@host)")
        common.add_argument("--why", default="", help="reason recorded with the action")
    if with_params:
        common.add_argument(
            "-p",
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a runbook parameter (repeat); lists are comma-separated",
        )
    return common


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runbook",
        help="run migration runbooks with checked gates (resumable, audited)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_ in (
        ("validate", "check a runbook whole; every problem with file:line"),
        ("plan", "show the steps, actions, gates and thresholds"),
    ):
        sub = _action(actions, name, _common(True, False), help_)
        sub.add_argument("runbook", help="built-in name or a .toml file")
    run = _action(actions, "run", _common(True), "start a run and drive it")
    run.add_argument("runbook", help="built-in name or a .toml file")
    run.add_argument(
        "--routes",
        default=os.environ.get("STRANGLER_ROUTES", ""),
        help="route store (file or postgresql:// URL; default $STRANGLER_ROUTES)",
    )
    run.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="URL",
        help="/metrics URL of a proxy replica (repeat for every replica)",
    )
    run.add_argument(
        "--prometheus",
        default="",
        metavar="URL",
        help="read the proxies' figures from this Prometheus server instead",
    )
    run.add_argument(
        "--source-settings",
        default="",
        metavar="MODULE",
        help="Django settings of the capturing project (the monolith)",
    )
    run.add_argument(
        "--target-settings",
        default="",
        metavar="MODULE",
        help="Django settings of the receiving project (the service)",
    )
    run.add_argument(
        "--monolith-source",
        default="",
        metavar="PATH",
        help="the monolith's code, for the retire report (read, never run)",
    )
    run.add_argument(
        "--parity-store",
        default=os.environ.get("STRANGLER_PARITY_STORE", ""),
        metavar="LOCATION",
        help="where the proxies compare shadowed pairs (their --parity-store), for parity gates",
    )
    run.add_argument(
        "--allow-commands",
        action="store_true",
        help="let `command` steps run their programs (opt-in)",
    )
    run.add_argument("--dry-run", action="store_true", help="validate and show; run nothing")
    run.add_argument("--detach", action="store_true", help="create the run, do not drive it")
    for name, help_ in (
        ("status", "where a run is: steps, gate readings, decisions"),
        ("resume", "continue a paused, interrupted or crashed run"),
        ("approve", "approve the step waiting for a human"),
        ("abort", "stop a run for good"),
        ("rollback", "undo the run's latest flip (the weight before it) and pause there"),
    ):
        sub = _action(actions, name, _common(), help_)
        sub.add_argument("run_id")
        if name == "approve":
            sub.add_argument("--step", default="", help="step to approve (default: the current)")
        if name == "resume":
            _lease_option(sub)
    _lease_option(run)
    history = _action(actions, "history", _common(), "runs, newest first")
    history.add_argument("--limit", type=int, default=20)
    parser.set_defaults(func=main)


MAX_LEASE_S = 86400.0


def lease_seconds(text: str) -> float:
    """--lease-seconds as a number of seconds from 1 to MAX_LEASE_S (exit 2 otherwise).

    NaN or infinity stored no expiry a later runner can pass (`lease_until < now` is never
    true), so a runner killed with -9 held its run forever; one below 1 s (or negative) has
    lapsed by the time it is renewed, letting a second runner in beside it."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 1 <= seconds <= MAX_LEASE_S:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(
            f"{text} is not a number of seconds from 1 to {MAX_LEASE_S:g}"
        )
    return seconds


def _lease_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lease-seconds",
        type=lease_seconds,
        default=15.0,
        help=f"how long the runner's lock outlives a crash (default 15, 1 to {MAX_LEASE_S:g})",
    )


def _params(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {pair!r}: expected NAME=VALUE")
        found[name.strip()] = value.strip()
    return found


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def main(args: argparse.Namespace) -> int:
    import sqlite3

    import psycopg

    from strangler.runbook.messages import RunbookInvalid
    from strangler.runbook.runs import Refused
    from strangler.runbook.store import LeaseHeld, NoSuchRun, RouteClaimed, StoreError

    try:
        return _dispatch(args)
    except RunbookInvalid as invalid:
        if args.json:
            print(
                json.dumps(
                    {"valid": False, "problems": [p.as_dict() for p in invalid.problems]}, indent=2
                )
            )
        for problem in invalid.problems:
            print(f"strangler runbook: {problem}", file=sys.stderr)
        print(
            f"strangler runbook: {len(invalid.problems)} problem(s); nothing ran", file=sys.stderr
        )
        return 2
    except (LeaseHeld, RouteClaimed) as held:
        print(f"strangler runbook: {held}", file=sys.stderr)
        return 1
    except (NoSuchRun, StoreError, Refused) as error:
        raise UsageError(str(error)) from error
    except (sqlite3.Error, psycopg.Error) as error:  # the run store went away mid-command
        raise UsageError(
            f"run store {args.store or DEFAULT_STORE}: {str(error).strip()}; a run being driven "
            "stays where it was: `strangler runbook resume` it once the store is back"
        ) from error


def _dispatch(args: argparse.Namespace) -> int:
    from strangler.runbook import builtin

    if args.action in ("validate", "plan"):
        params = _params(args.param)
        runbook = builtin.resolve(args.runbook, params or None)
        if args.action == "validate":
            _print(
                args,
                {"valid": True, "runbook": runbook.name, "steps": len(runbook.steps)},
                f"{runbook.source}: valid ({len(runbook.steps)} steps)",
            )
        else:
            _print(args, plan_json(runbook), render_plan(runbook))
        return 0
    from strangler.runbook.store import RunStore

    if args.action == "run":
        return _run(args)
    store = RunStore(args.store or DEFAULT_STORE, create=False)
    try:
        if args.action == "history":
            if args.limit < 1:
                raise UsageError(f"--limit {args.limit}: at least 1")
            runs = store.runs(args.limit)
            _print(
                args,
                {"runs": [r.summary() for r in runs]},
                "\n".join(
                    f"{r.id}  {r.created_at}  {r.runbook:<16} {r.state:<8} {r.step}" for r in runs
                )
                or "no runs yet",
            )
            return 0
        return _on_run(args, store)
    finally:
        store.close()


def plan_json(runbook: Any) -> dict[str, Any]:
    return {
        "runbook": runbook.name,
        "title": runbook.title,
        "bound": runbook.bound,
        "params": [
            {"name": p.name, "type": p.type, "help": p.help, "default": p.default}
            for p in runbook.params
        ],
        "steps": [
            {
                "id": s.id,
                "title": s.title,
                "action": s.action,
                "settings": s.settings,
                "gates": [g.describe() for g in s.gates],
                "bake": s.bake,
                "deadline": s.deadline,
                "on_fail": s.on_fail,
            }
            for s in runbook.steps
        ],
    }


def render_plan(runbook: Any) -> str:
    lines = [f"{runbook.name}: {runbook.title}"]
    for p in runbook.params:
        default = "" if p.default is None else f" (default {p.default})"
        lines.append(f"  param {p.name} ({p.type}){default}: {p.help}")
    for number, s in enumerate(runbook.steps, start=1):
        settings = ", ".join(f"{k}={v}" for k, v in s.settings.items())
        lines.append(f"{number:2}. {s.id}: {s.title}")
        lines.append(
            f"      action {s.action}({settings})  bake {s.bake:g}s  deadline "
            f"{s.deadline:g}s  on fail: {s.on_fail}"
        )
        lines += [f"      gate {g.describe()}" for g in s.gates]
    return "\n".join(lines)


def _who(args: argparse.Namespace) -> str:
    from strangler.control.store import default_actor

    return args.who or default_actor()


def _run(args: argparse.Namespace) -> int:
    """Validate and bind everything first; only then open the store and create the run.

    The file is read once: the text validated is the text stored (an edit landing between
    two reads stored a runbook nobody validated, which every `resume` then runs)."""
    from strangler.runbook import builtin
    from strangler.runbook.definition import parse
    from strangler.runbook.messages import Problem, RunbookInvalid
    from strangler.runbook.sources import Environment

    params = _params(args.param)
    text, label = builtin.source(args.runbook)
    runbook = parse(text, label, params)
    problems = []
    if not args.routes:
        problems.append(
            Problem(
                "runbook.E012",
                "--routes",
                "no route store",
                "pass --routes FILE|URL or set $STRANGLER_ROUTES",
            )
        )
    else:
        problems += route_problems(runbook, args.routes)
    if any(s.action == "command" for s in runbook.steps) and not args.allow_commands:
        problems.append(
            Problem(
                "runbook.E013",
                runbook.source,
                "the runbook has command steps",
                "pass --allow-commands to let them run",
            )
        )
    if problems:
        raise RunbookInvalid(problems)
    env = Environment(
        routes=args.routes,
        metrics=tuple(args.metrics),
        prometheus=args.prometheus,
        source_settings=args.source_settings,
        target_settings=args.target_settings,
        monolith_source=args.monolith_source,
        parity_store=args.parity_store,
        allow_commands=args.allow_commands,
        cwd=os.getcwd(),  # the run's programs run where it was started, whoever resumes it
    )
    if args.dry_run:
        _print(
            args,
            plan_json(runbook) | {"dry_run": True, "env": env.to_json()},
            render_plan(runbook) + "\n(dry run: nothing was started)",
        )
        return 0
    from strangler.runbook.store import RunStore

    store = RunStore(args.store or DEFAULT_STORE)
    try:
        return _start(args, store, runbook, text, params, env)
    finally:
        store.close()


def route_problems(runbook: Any, routes: str) -> list[Any]:
    """runbook.E012/E015: the route store cannot be read, or lacks a route the runbook moves."""
    from strangler.control import open_store
    from strangler.runbook.messages import Problem

    named = sorted(
        {s.settings["route"] for s in runbook.steps if "route" in s.settings}
        | {g.settings["route"] for s in runbook.steps for g in s.gates if "route" in g.settings}
    )
    if not named:
        return []
    try:
        store = open_store(routes)
        try:
            table = store.current().table
        finally:
            getattr(store, "close", lambda: None)()
    except Exception as error:  # whatever the store says, the run must not start
        return [
            Problem(
                "runbook.E012",
                "--routes",
                f"cannot read the route store {routes}: {error}",
                "check the path or URL (`strangler route list`)",
            )
        ]
    return [
        Problem(
            "runbook.E015",
            "--routes",
            f"route {name!r} is not in the route table",
            "add it with `strangler route set` or fix the route param",
        )
        for name in named
        if table.route(name) is None
    ]


def _start(
    args: argparse.Namespace,
    store: Any,
    runbook: Any,
    text: str,
    params: dict[str, str],
    env: Any,
) -> int:
    from strangler.runbook import actions, runs

    try:
        run = runs.start(store, runbook, text, params, env, _who(args), args.why)
    except actions.ActionFailed as error:
        raise UsageError(str(error)) from error
    out = sys.stderr if args.json else sys.stdout
    print(f"run {run.id} of {runbook.name} (store {store.location})", file=out, flush=True)
    if args.detach:
        _print(
            args,
            run.summary(),
            f"created run {run.id}; drive it with `strangler runbook resume {run.id}`",
        )
        return 0
    return _drive(args, store, run.id)


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a runner like Ctrl-C: lease released, resumable


def _drive(args: argparse.Namespace, store: Any, run_id: str) -> int:
    from strangler.runbook.engine import Engine

    out = sys.stderr if args.json else sys.stdout
    engine = Engine(
        store,
        run_id,
        _who(args),
        lambda line: print(line, file=out, flush=True),
        lease_seconds=args.lease_seconds,
        why=args.why if args.action == "resume" else "",
    )
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        run = engine.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(json.dumps(_status(store, run_id), indent=2, default=str))
    return 0 if run.state == "done" else 1


def _status(store: Any, run_id: str) -> dict[str, Any]:
    from strangler.runbook.definition import parse
    from strangler.runbook.report import status

    run = store.get(run_id)
    return status(parse(run.definition, run.source, run.params), run, store.events(run_id))


def _on_run(args: argparse.Namespace, store: Any) -> int:
    from strangler.runbook import runs
    from strangler.runbook.report import render

    run = store.get(args.run_id)
    who = _who(args)
    if args.action == "status":
        report = _status(store, run.id)
        _print(args, report, render(report))
        return 0
    if run.state in ("done", "aborted"):
        raise UsageError(f"run {run.id} is {run.state}; nothing to {args.action}")
    if args.action == "resume":
        return _drive(args, store, run.id)
    if args.action == "approve":
        step = runs.approve(store, run.id, who, args.why, args.step)
        _print(
            args,
            {"approved": step, "who": who},
            f"approved {step} of run {run.id} as {who}"
            + (
                ""
                if _status(store, run.id)["runner"]
                else f"; no runner is on it: `strangler runbook resume {run.id}`"
            ),
        )
        return 0
    if args.action == "abort":
        runs.abort(store, run.id, who, args.why)
        _print(args, {"aborted": run.id}, f"run {run.id} aborted")
        return 0
    return _rollback(args, store, run, who)


def _rollback(args: argparse.Namespace, store: Any, run: Any, who: str) -> int:
    """Undo the run's latest traffic change: the route goes back to the weight before it, and
    the run pauses at that step, so `resume` takes the step again with its gates."""
    from strangler.runbook import actions, runs
    from strangler.runbook.definition import parse
    from strangler.runbook.engine import rollback_target
    from strangler.runbook.sources import Environment

    runbook = parse(run.definition, run.source, run.params)
    started = {e.step for e in store.events(run.id, "step_started")}
    reached = runbook.steps[: runbook.index(run.step) + 1] if run.step else runbook.steps
    anchor = next(
        (s for s in reversed(reached) if s.action == "set_weight" and s.id in started), None
    )
    if anchor is None:
        raise UsageError(f"run {run.id} has moved no traffic yet; nothing to roll back")
    passed = {e.step for e in store.events(run.id, "step_passed")}
    route, weight = rollback_target(runbook, anchor, passed - {anchor.id})
    env, actor = Environment.from_json(run.env), f"runbook {run.id} ({who})"
    why = f"manual rollback of run {run.id}, undoing step {anchor.id}: {args.why}"
    try:
        version = actions.set_weight(env, route, weight, actor, why)
    except actions.ActionFailed as error:
        raise UsageError(str(error)) from error
    reason = f"rolled back by {who} to {weight}% (undoing {anchor.id}): {args.why}"
    attempt = max((e.attempt for e in store.events(run.id) if e.step == anchor.id), default=0)
    data = {"route": route, "weight": weight, "version": version.number}
    store.record(run.id, anchor.id, attempt, "manual_rollback", who, args.why, data)
    # a paused attempt makes `resume` start the step again, its action included
    store.record(
        run.id,
        anchor.id,
        attempt,
        "paused",
        who,
        reason,
        state="paused",
        reason=reason,
        move_to=anchor.id,
    )
    try:  # a runner's flip in flight may land after the rollback: then it is set again
        again = runs.reassert_rollback(
            store, run.id, anchor.id, env, version, route, weight, actor,
            f"{why} (again: the runner's flip of {anchor.id}, in flight, landed after it)",
        )  # fmt: skip
    except actions.ActionFailed as error:
        raise UsageError(
            f"the runner's flip of {anchor.id} landed after the rollback, and setting "
            f"{route} to {weight}% again failed: {error}; set it with `strangler route weight`"
        ) from error
    if again is not None:
        version = again
    _print(
        args,
        data | {"step": anchor.id, "version": version.number},
        f"{route} -> {weight}% (route table version {version.number}); run {run.id} paused "
        f"at {anchor.id}",
    )
    return 0
