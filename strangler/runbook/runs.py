"""Starting and steering runs: claim the routes a run moves, approve a step, abort a run.

The public paths the CLI and the dashboard share. A run claims every route it changes
(one active run per route), and the versions it starts from and leaves the routes at are in
its events, so the engine can tell a change it made from one somebody else made.
"""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

from strangler.control.store import Version
from strangler.runbook import actions
from strangler.runbook.definition import Runbook, parse
from strangler.runbook.sources import Environment
from strangler.runbook.store import Event, Run, RunStore

ROUTE_ACTIONS = frozenset({"set_weight", "set_shadow", "set_state"})


class Refused(ValueError):
    """The command does not apply to this run or step; the message says why."""


def moved_routes(runbook: Runbook) -> list[str]:
    """The routes the runbook's actions change, in id order."""
    return sorted({s.settings["route"] for s in runbook.steps if s.action in ROUTE_ACTIONS})


def claim_key(routes: str) -> str:
    """The route store as claims name it: a file by its absolute path, a URL as given."""
    if routes.startswith(("postgresql://", "postgres://")):
        return routes
    return str(Path(routes).resolve())


def start(
    store: RunStore,
    runbook: Runbook,
    text: str,
    params: dict[str, str],
    env: Environment,
    who: str,
    why: str,
) -> Run:
    """Create a run of a bound runbook, claiming its routes at the table version now;
    RouteClaimed if another active run moves one of them."""
    names = moved_routes(runbook)
    version = actions.current_version(env).number if names else 0
    return store.create(
        runbook.name,
        runbook.source,
        text,
        params,
        env.to_json(),
        runbook.steps[0].id,
        who,
        why,
        routes=claim_key(env.routes),
        claims=dict.fromkeys(names, version),
    )


VERSION_EVENTS = ("run_created", "resumed", "action_done", "rolled_back", "manual_rollback")


def expected_versions(events: list[Event]) -> dict[str, int]:
    """Each route's table version as the run last set or accepted it, read from its events."""
    found: dict[str, int] = {}
    for event in events:
        if event.kind in ("run_created", "resumed"):
            found.update(event.data.get("routes", {}))
        elif event.kind == "action_done":
            result = event.data.get("result", {})
            if "version" in result and "route" in result:
                found[result["route"]] = result["version"]
        elif event.kind in ("rolled_back", "manual_rollback") and "version" in event.data:
            found[event.data["route"]] = event.data["version"]
    return found


def foreign_change(history: list[Version], route: str, since: int, run_id: str) -> Version | None:
    """The newest change to `route` after version `since` that run `run_id` did not make.

    `history` is newest first and reaches back to `since`; the run's own changes name it
    (`runbook RUN_ID (who)`), even one whose runner died before recording it.
    """
    newer = [v for v in history if v.number >= since]
    mine = f"runbook {run_id} ("
    for version, before in pairwise(newer):
        if _entry(version, route) != _entry(before, route) and not version.who.startswith(mine):
            return version
    return None


def _entry(version: Version, route: str) -> object:
    return next((r for r in version.raw.get("routes", []) if r.get("id") == route), None)


FLIP_SETTLE_S = 30.0  # how long a manual rollback waits for a runner's flip in flight


def flip_in_flight(store: RunStore, run_id: str, step_id: str) -> bool:
    """True while a runner holds the run's lease and `step_id`'s latest attempt started its
    action without recording it done: that runner's write may land after anything now."""
    events = [e for e in store.events(run_id) if e.step == step_id]
    starts = [e.attempt for e in events if e.kind == "step_started"]
    kinds = {e.kind for e in events if starts and e.attempt == starts[-1]}
    if "action_started" not in kinds or "action_done" in kinds:
        return False
    run = store.get(run_id)
    return run.lease_owner is not None and (run.lease_until or 0) > time.time()


def reassert_rollback(
    store: RunStore,
    run_id: str,
    step_id: str,
    env: Environment,
    rolled: Version,
    route: str,
    weight: float,
    who: str,
    why: str,
    wait_s: float = FLIP_SETTLE_S,
) -> Version | None:
    """After a manual rollback to `weight` (table version `rolled`) paused the run: once no
    runner's flip of `step_id` is in flight (waiting up to `wait_s`), set `route` back to
    that weight if the run's runner changed it since and nobody else did. A flip that read
    the route before the rollback and wrote after it undid it: the rollback changed nothing
    there (the route was still at the weight it rolls back to), so the flip's `seen` found
    no conflict. The new version, or None when the rollback stands."""
    deadline = time.monotonic() + wait_s
    while flip_in_flight(store, run_id, step_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    history = actions.history_since(env, rolled.number)
    if _entry(history[0], route) == _entry(rolled, route):
        return None
    if foreign_change(history, route, rolled.number, run_id) is not None:
        return None  # someone else changed the route since: theirs stands
    return actions.set_weight(env, route, weight, who, why, seen=history[0].number)


def approve(store: RunStore, run_id: str, who: str, why: str, step_id: str = "") -> str:
    """Record an approval of `step_id` (default the run's current step); the step approved.

    Refused when the run is over, has no such step, the step has no approval gate, or it
    passed already (an approval meant for it never goes to the step the run is at now).
    """
    run = _active(store, run_id, "approve")
    step_id = step_id or run.step
    steps = {s.id: s for s in parse(run.definition, run.source, run.params).steps}
    step = steps.get(step_id)
    if step is None:
        raise Refused(f"run {run.id} has no step {step_id!r}; see `strangler runbook status`")
    if not any(g.kind == "approval" for g in step.gates):
        raise Refused(
            f"step {step_id} of run {run.id} has no approval gate: nothing to approve "
            "(only a step with an `approval` gate waits for a human)"
        )
    passed = {e.step for e in store.events(run.id, "step_passed")}
    if step_id in passed and step_id != run.step:
        raise Refused(
            f"step {step_id} of run {run.id} passed already (the run is at {run.step}): "
            "nothing approved"
        )
    store.record(run.id, step_id, 0, "approved", who, why)
    return step_id


def abort(store: RunStore, run_id: str, who: str, why: str) -> Run:
    """Stop a run for good (a runner on it sees that and stops); its routes are free again."""
    run = _active(store, run_id, "abort")
    reason = f"aborted by {who}: {why}"
    store.record(run.id, run.step, 0, "aborted", who, why, state="aborted", reason=reason)
    return store.get(run.id)


def _active(store: RunStore, run_id: str, action: str) -> Run:
    run = store.get(run_id)
    if run.state in ("done", "aborted"):
        raise Refused(f"run {run.id} is {run.state}; nothing to {action}")
    return run
