"""The action vocabulary, performed through the other parts' public paths.

Route changes go through strangler.control's store (the same audited path as `strangler
route`), CDC work through `strangler cdc`. Every action here is idempotent except `command`,
which the engine records before and after and never re-runs on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from strangler.control import ValidationFailed, open_store
from strangler.control.store import (
    ConcurrentChange,
    RouteChanged,
    RouteStore,
    StoreUnavailable,
    Version,
)
from strangler.runbook.definition import Step
from strangler.runbook.sources import Environment, SourceError, run_program, strangler_cdc

HISTORY_LIMIT = 1000  # versions read back to tell a run's own route changes from others'


class ActionFailed(Exception):
    """An action could not be done; the message says what and where."""


class RouteMoved(ActionFailed):
    """Someone changed the route after the run read it (the version it passed as `seen`):
    nothing was changed, so the run never writes over a human's decision."""


def _with_store(env: Environment) -> RouteStore:
    try:
        return open_store(env.routes)
    except Exception as error:  # a store that cannot be opened is the action's failure
        raise ActionFailed(f"cannot open the route store {env.routes}: {error}") from error


def _close(store: RouteStore) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def current_version(env: Environment) -> Version:
    """The route table as it is now."""
    return history_since(env, 1 << 62)[0]


def history_since(env: Environment, since: int) -> list[Version]:
    """The route table's versions from `since` (at most HISTORY_LIMIT) to now, newest first;
    ActionFailed when the table cannot be read: a store down, or a table file someone left
    invalid by hand (route.E000: the proxies keep their last table, the run must not crash)."""
    store = _with_store(env)
    try:
        current = store.current()  # records a hand edit of a table file as its own version
        if current.number <= since:
            return [current]
        return store.history(min(HISTORY_LIMIT, current.number - since + 1))
    except (StoreUnavailable, ValidationFailed) as error:
        raise ActionFailed(str(error)) from error
    finally:
        _close(store)


def _change_route(env: Environment, change: Callable[[RouteStore], Version]) -> Version:
    """One audited change through the control plane's store (as `strangler route` makes it)."""
    store = _with_store(env)
    try:
        return change(store)
    except RouteChanged as error:
        raise RouteMoved(str(error)) from error
    except (ValidationFailed, ConcurrentChange, StoreUnavailable) as error:
        raise ActionFailed(str(error)) from error
    finally:
        _close(store)


# Each change takes `seen`: the table version the run read the route in (None: now). A
# change of the route by anyone after it refuses the write (RouteMoved) instead of undoing
# it, however short the time between the run's read and its write.


def set_weight(
    env: Environment, route: str, weight: float, who: str, why: str, seen: int | None = None
) -> Version:
    """A route's weight through the control plane's audited store (as `strangler route weight`)."""
    return _change_route(env, lambda store: store.set_weight(route, weight, who, why, seen))


def set_shadow(
    env: Environment, route: str, percent: float, who: str, why: str, seen: int | None = None
) -> Version:
    """The share of a route's requests shadowed to its service, for parity (`route shadow`)."""
    return _change_route(env, lambda store: store.set_shadow(route, percent, who, why, seen))


def set_state(
    env: Environment, route: str, state: str, who: str, why: str, seen: int | None = None
) -> Version:
    """A route's state (retired, service...) as a new audited version of the table."""
    return _change_route(env, lambda store: store.set_state(route, state, who, why, seen))


def perform(
    step: Step, env: Environment, who: str, why: str, seen: int | None = None
) -> dict[str, Any]:
    """Do the step's action; what it did, for the record. ActionFailed when it could not,
    RouteMoved when its route changed after table version `seen`."""
    s = step.settings
    try:
        if step.action == "set_weight":
            version = set_weight(env, s["route"], s["weight"], who, why, seen)
            return {"route": s["route"], "weight": s["weight"], "version": version.number}
        if step.action == "set_shadow":
            version = set_shadow(env, s["route"], s["percent"], who, why, seen)
            return {"route": s["route"], "shadow": s["percent"], "version": version.number}
        if step.action == "set_state":
            version = set_state(env, s["route"], s["state"], who, why, seen)
            return {"route": s["route"], "state": s["state"], "version": version.number}
        if step.action == "cdc_snapshot":
            return _snapshot(env, list(s["tables"]))
        if step.action == "reconcile":
            args = ["reconcile", "--json", *(["--repair"] if s.get("repair") else [])]
            report = strangler_cdc(env, env.target_settings, *args)
            return {"drifted": report.get("drifted"), "repaired": bool(s.get("repair"))}
        if step.action == "command":
            return _command(env, list(s["argv"]))
        if step.action == "retire_report":
            from strangler.runbook.retire import report

            return report(env, s["route"], list(s.get("tables", [])))
    except SourceError as error:
        raise ActionFailed(str(error)) from error
    return {}  # check, wait, approve: the gates do the work


def _snapshot(env: Environment, tables: list[str]) -> dict[str, Any]:
    if not env.source_settings:
        raise ActionFailed("cdc_snapshot needs --source-settings (the capturing project)")
    argv = [
        sys.executable,
        "-m",
        "strangler",
        "cdc",
        "--settings",
        env.source_settings,
        "snapshot",
        *tables,
    ]
    result = run_program(argv, env, env.command_timeout)
    if result.returncode != 0:
        raise ActionFailed(
            f"snapshot failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    return {"tables": tables, "output": result.stdout.strip().splitlines()[-len(tables) :]}


def _command(env: Environment, argv: list[str]) -> dict[str, Any]:
    if not env.allow_commands:
        raise ActionFailed("command steps run only with `--allow-commands` (runbook.E013)")
    result = run_program(argv, env, env.command_timeout)
    if result.returncode != 0:
        raise ActionFailed(
            f"{' '.join(argv)} exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    return {"argv": argv, "exit": 0, "output": result.stdout.strip()[-500:]}
