"""The engine: runs a runbook's steps, records everything, resumes exactly where it stopped.

Each step attempt is recorded as events: step_started, action_started, action_done (with the
window's baseline), one `gates` event per evaluation round, then step_passed (which moves the
run to the next step in the same transaction) or step_failed -> [rolled_back] -> paused. After
a crash (kill -9 at any point) the events say what completed: a completed action is never
repeated; an idempotent action that started but did not finish is done again; an interrupted
`command` is not re-run without a human (the step fails and the run pauses). A resumed
watch bakes afresh: only watched time counts. Before every action and gate round the engine
checks that nobody else changed the routes it moves since it last set them, and pauses if so.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from strangler.runbook import actions, runs
from strangler.runbook.definition import Runbook, Step, parse
from strangler.runbook.gates import Evaluation
from strangler.runbook.sources import Environment, ProxyReader, Window, evaluate
from strangler.runbook.store import Event, LeaseHeld, Run, RunMoved, RunState, RunStore

StepOutcome = Literal["passed", "paused", "stopped"]
LEASE_SECONDS = 15.0
AFTER_A_HUMAN = (
    "check the route (`strangler route history`), then resume: the run goes on from the "
    "route as it is then"
)


def new_owner() -> str:
    """An id for one runner process, shown to anyone refused by its lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Heartbeat:
    """Renews the lease from a thread of its own, so a long action does not let it lapse."""

    def __init__(self, location: str, run_id: str, owner: str, ttl: float) -> None:
        self.args = (location, run_id, owner, ttl)
        self.lost = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="runbook-lease")

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _beat(self) -> None:
        location, run_id, owner, ttl = self.args
        store = RunStore(location)
        try:
            while not self.stopped.wait(ttl / 3):
                try:
                    store.renew(run_id, owner, ttl)
                except LeaseHeld:
                    self.lost.set()
                    return
        finally:
            store.close()


@dataclass
class Attempt:
    """Where the current attempt of a step stands, read back from its events."""

    number: int
    started_at: float
    events: list[Event]

    def has(self, kind: str) -> Event | None:
        return next((e for e in reversed(self.events) if e.kind == kind), None)


class Engine:
    """Drives one run from its current step to the end, a pause, or an abort."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        who: str,
        out: Callable[[str], None] = lambda line: None,
        lease_seconds: float = LEASE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        why: str = "",
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.who = who
        self.why = why  # the human's reason for resuming, recorded with it
        self.out = out
        self.lease = lease_seconds
        self.sleep = sleep
        self.owner = new_owner()
        self.heartbeat: Heartbeat | None = None

    @property
    def actor(self) -> str:
        """Who the route table's audit log names for changes this run makes."""
        return f"runbook {self.run_id} ({self.who})"

    def run(self) -> Run:
        """Run until done, paused or aborted; LeaseHeld if another runner is on this run."""
        run = self.store.get(self.run_id)
        if run.state in ("done", "aborted"):
            return run
        self.store.acquire(self.run_id, self.owner, self.lease)
        try:
            with Heartbeat(self.store.location, self.run_id, self.owner, self.lease) as beat:
                self.heartbeat = beat
                self._run()
        except RunMoved as moved:  # paused, rolled back or aborted meanwhile: leave it so
            self.out(f"      {moved}")
        finally:
            self.heartbeat = None
            self.store.release(self.run_id, self.owner)
        return self.store.get(self.run_id)

    def _record(
        self,
        step: str,
        attempt: int,
        kind: str,
        why: str = "",
        data: Any = None,
        while_state: RunState = "running",
        **move: Any,
    ) -> None:
        """Record while this runner holds the lease and the run is `while_state` (RunMoved
        when someone paused, rolled back or aborted it since)."""
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise LeaseHeld(f"run {self.run_id}: this runner lost its lease")
        self.store.record(
            self.run_id,
            step,
            attempt,
            kind,
            self.who,
            why,
            data,
            owner=self.owner,
            while_state=while_state,
            **move,
        )

    def _run(self) -> None:
        run = self.store.get(self.run_id)
        runbook = parse(run.definition, run.source, run.params)
        env = Environment.from_json(run.env)
        if run.state == "paused":  # a human's decision: the routes are accepted as they are
            now = self._version_now(env)
            routes = dict.fromkeys(runs.moved_routes(runbook), now) if now else {}
            self._record(
                run.step,
                0,
                "resumed",
                self.why or "resume",
                {"routes": routes},
                while_state="paused",
                state="running",
                reason="",
            )
        elif any(e.kind == "step_started" for e in self.store.events(self.run_id)):
            # A runner stopped (crashed, killed) mid-run: who took it over, and why, is
            # audited; the routes are not accepted as they are (no "routes": checked as ever).
            why = self.why or "taken over after its runner stopped"
            self._record(run.step, 0, "resumed", why, {"interrupted": True})
        index = runbook.index(run.step) if run.step else len(runbook.steps)
        while index < len(runbook.steps):
            if self._step(runbook, index, env) != "passed":
                return
            index += 1
        self._record("", 0, "run_done", "every step passed", state="done", reason="", move_to="")
        self.out(f"run {self.run_id}: every step passed")

    def _attempt(self, step: Step) -> Attempt | None:
        events = [e for e in self.store.events(self.run_id) if e.step == step.id]
        starts = [e for e in events if e.kind == "step_started"]
        if not starts:
            return None
        latest = starts[-1]
        return Attempt(
            latest.attempt, epoch(latest.at), [e for e in events if e.attempt == latest.attempt]
        )

    def _step(self, runbook: Runbook, index: int, env: Environment) -> StepOutcome:
        step = runbook.steps[index]
        attempt = self._attempt(step)
        if attempt is None or attempt.has("paused"):
            number = attempt.number + 1 if attempt else 1
            self._record(step.id, number, "step_started", step.title)
            attempt = self._attempt(step)
            assert attempt is not None
            self.out(f"[{index + 1}/{len(runbook.steps)}] {step.id}: {step.title}")
        else:
            self.out(
                f"[{index + 1}/{len(runbook.steps)}] {step.id}: {step.title} (resumed, "
                f"attempt {attempt.number})"
            )
        failed = attempt.has("step_failed")
        if failed is not None:  # the runner died while handling the failure: finish it
            return self._fail(runbook, step, attempt.number, failed.why, failed.data)
        done = attempt.has("action_done")
        if done is None:
            if attempt.has("action_started") and step.action == "command":
                return self._fail(
                    runbook,
                    step,
                    attempt.number,
                    "the command was interrupted and may have partly run; check "
                    "it, then `strangler runbook resume` runs it again",
                    {},
                )
            result = self._act(runbook, step, attempt.number, env)
            if result is None:
                return "paused"
            done = self._attempt(step).has("action_done")  # type: ignore[union-attr]
            assert done is not None
            return self._watch(runbook, step, attempt, env, done, epoch(done.at))
        # a resumed watch: nobody watched while the runner was down, so the bake starts over
        self._record(step.id, attempt.number, "bake_restarted", "resumed: only watched time bakes")
        return self._watch(runbook, step, attempt, env, done, time.time())

    def _act(
        self, runbook: Runbook, step: Step, number: int, env: Environment
    ) -> dict[str, Any] | None:
        moved, seen = self._check_routes(env)
        if moved:
            self._pause(step, number, moved)
            return None
        self._record(step.id, number, "action_started", step.action, step.settings)
        why = f"runbook {runbook.name} run {self.run_id} step {step.id}: {step.title}"
        index = runbook.index(step.id)
        if index:
            why += f"; {self._verdicts(runbook.steps[index - 1].id)}"
        try:
            result = actions.perform(step, env, self.actor, why, seen)
        except actions.RouteMoved as error:  # a human's change won the race: keep it
            self.out(f"      {step.action} not done: {error}")
            self._pause(step, number, f"{step.action} not done: {error}; {AFTER_A_HUMAN}")
            return None
        except actions.ActionFailed as error:
            self._fail(runbook, step, number, f"action {step.action} failed: {error}", {})
            return None
        proxy = ProxyReader(env)
        if "version" in result:  # a flip: the window starts once every replica serves it
            result["in_force_everywhere"] = proxy.wait_for_version(result["version"])
        baseline = proxy.baseline()
        self._record(
            step.id, number, "action_done", step.action, {"result": result, "baseline": baseline}
        )
        if result:
            self.out(f"      {step.action}: {_brief(result)}")
        return result

    def _watch(
        self,
        runbook: Runbook,
        step: Step,
        attempt: Attempt,
        env: Environment,
        done: Event,
        baked_from: float,
    ) -> StepOutcome:
        """Evaluate the gates until the step passes, fails or is stopped; the bake counts
        from `baked_from` (the action, or this runner's start when it resumed the watch)."""
        shown: tuple[str, ...] = ()
        # the deadline counts from the step's start, but always leaves a resumed watch its bake
        deadline_at = max(attempt.started_at + step.deadline, baked_from + step.bake)
        while True:
            run = self.store.get(self.run_id)
            if run.state != "running":
                self.out(f"      run is {run.state}: {run.reason}")
                return "stopped"
            moved, _ = self._check_routes(env)
            if moved:
                self._pause(step, attempt.number, moved)
                return "paused"
            window = self._window(step, done, deadline_at)
            read_from = time.time()  # a round counts as baked only if its readings all are
            evaluations = [evaluate(gate, env, window) for gate in step.gates]
            now = time.time()
            if evaluations:
                self._record(
                    step.id,
                    attempt.number,
                    "gates",
                    "",
                    {
                        "evaluations": [e.as_dict() for e in evaluations],
                        "window_s": round(now - epoch(done.at), 3),
                        "baked_s": round(read_from - baked_from, 3),
                    },
                )
                summary = tuple(f"{e.gate}={e.outcome}" for e in evaluations)
                if summary != shown:
                    shown = summary
                    for evaluation in evaluations:
                        self.out(f"      {read_from - baked_from:5.1f}s {evaluation.line()}")
            failing = [e for e in evaluations if e.outcome == "fail"]
            if failing and step.on_fail == "rollback":
                return self._fail(
                    runbook,
                    step,
                    attempt.number,
                    _why(failing),
                    {"evaluations": [e.as_dict() for e in evaluations]},
                )
            passed = all(e.outcome == "pass" for e in evaluations)
            if passed and read_from - baked_from >= step.bake:
                following = runbook.steps[runbook.index(step.id) + 1 :]
                self._record(
                    step.id,
                    attempt.number,
                    "step_passed",
                    "every gate passed" if evaluations else "done",
                    {"evaluations": [e.as_dict() for e in evaluations]},
                    state="running",
                    move_to=following[0].id if following else "",
                )
                self.out(f"      passed after {now - attempt.started_at:.1f}s")
                return "passed"
            if now >= deadline_at:
                not_passed = [e for e in evaluations if e.outcome != "pass"]
                return self._fail(
                    runbook,
                    step,
                    attempt.number,
                    f"deadline {step.deadline:g}s reached: {_why(not_passed)}",
                    {"evaluations": [e.as_dict() for e in evaluations]},
                )
            waits = [step.interval, deadline_at - now]
            if now - baked_from < step.bake:
                waits.append(step.bake - (now - baked_from))
            self.sleep(max(0.05, min(waits)))

    def _window(self, step: Step, done: Event, deadline_at: float) -> Window:
        """What the step's gates read over: since its action, its approvals, and reads
        bounded by its deadline."""
        approvals = [e for e in self.store.events(self.run_id, "approved") if e.step == step.id]
        last = approvals[-1] if approvals else None
        return Window(
            done.data.get("baseline", {}),
            last.who if last else None,
            last.why if last else "",
            done.data.get("result", {}).get("version"),
            deadline_at,
        )

    def _fail(
        self, runbook: Runbook, step: Step, number: int, why: str, data: dict[str, Any]
    ) -> StepOutcome:
        if self._attempt(step).has("step_failed") is None:  # type: ignore[union-attr]
            self._record(step.id, number, "step_failed", why, data)
            self.out(f"      FAILED: {why}")
        reason = f"step {step.id} failed: {why}"
        if step.on_fail == "rollback":
            reason += self._undo(runbook, step, number, reason)
        self._pause(step, number, reason, "fix the cause")
        return "paused"

    def _undo(self, runbook: Runbook, step: Step, number: int, reason: str) -> str:
        """Roll the failed attempt's traffic back once; what happened, for the pause reason.

        A `rolled_back` already recorded for the attempt (the runner died before its pause)
        is that rollback done: rolling back again on resume would write over whatever the
        route went through since, with an audit entry for a decision nobody made again."""
        done = self._attempt(step).has("rolled_back")  # type: ignore[union-attr]
        if done is not None:
            weight, version = done.data["weight"], done.data["version"]
            return f"; rolled back to {weight}% (route table version {version}, before a restart)"
        env = Environment.from_json(self.store.get(self.run_id).env)
        moved, seen = self._check_routes(env)
        if moved:
            return f"; not rolled back: {moved}"
        return self._roll_back(runbook, step, number, reason, seen)

    def _pause(self, step: Step, number: int, reason: str, then: str = "check") -> None:
        self._record(step.id, number, "paused", reason, state="paused", reason=reason)
        if not reason.startswith(f"step {step.id} failed"):
            self.out(f"      PAUSED: {reason}")
        self.out(f"      paused: {then}, then `strangler runbook resume {self.run_id}`")

    def _version_now(self, env: Environment) -> int:
        """The route table's version now (0 when the store cannot be read: then the next
        check compares against the run's earlier record)."""
        try:
            return actions.current_version(env).number
        except actions.ActionFailed:
            return 0

    def _check_routes(self, env: Environment) -> tuple[str, int | None]:
        """Why the run must not act: a route it moves was changed by someone else since the
        run last set (or a human accepted) it; "" when none was, or the table is unreadable
        (the action or gate reading it then says so). With it, the table version the routes
        were found in (None when none was read): a change the run makes next passes it as
        `seen`, so a human's change landing after this check refuses the run's write instead
        of being undone by it."""
        expected = runs.expected_versions(self.store.events(self.run_id, *runs.VERSION_EVENTS))
        expected = {route: number for route, number in expected.items() if number > 0}
        if not expected:
            return "", None
        try:
            history = actions.history_since(env, min(expected.values()))
        except actions.ActionFailed:
            return "", None
        for route, since in sorted(expected.items()):
            change = runs.foreign_change(history, route, since, self.run_id)
            if change is not None:
                return (
                    f"route {route} was changed by someone else after this run left it at "
                    f"table version {since}: version {change.number} by {change.who} "
                    f"({change.why!r}); {AFTER_A_HUMAN}"
                ), history[0].number
        return "", history[0].number

    def _roll_back(
        self, runbook: Runbook, step: Step, number: int, reason: str, seen: int | None
    ) -> str:
        """Put the route back through the control path, unless someone changed it after
        table version `seen`; what happened, for the pause reason."""
        route, weight = rollback_target(runbook, step, self._passed_steps())
        env = Environment.from_json(self.store.get(self.run_id).env)
        why = f"runbook {runbook.name} run {self.run_id}: automatic rollback, {reason}"
        try:
            result = actions.set_weight(env, route, weight, self.actor, why, seen)
        except actions.RouteMoved as error:  # a human moved it meanwhile: theirs stands
            self.out(f"      not rolled back: {error}")
            return f"; not rolled back: {error}; {AFTER_A_HUMAN}"
        except actions.ActionFailed as error:
            self._record(
                step.id, number, "rollback_failed", str(error), {"route": route, "weight": weight}
            )
            self.out(f"      ROLLBACK FAILED: {error}")
            return (
                f"; AUTOMATIC ROLLBACK FAILED ({error}): set it by hand, "
                f"`strangler runbook rollback {self.run_id}`"
            )
        self._record(
            step.id,
            number,
            "rolled_back",
            reason,
            {"route": route, "weight": weight, "version": result.number},
        )
        self.out(f"      rolled back: {route} -> {weight}% (route table version {result.number})")
        return f"; rolled back to {weight}%"

    def _verdicts(self, step_id: str) -> str:
        """How the step before passed, for the audit log of the change this step makes."""
        passed = [e for e in self.store.events(self.run_id, "step_passed") if e.step == step_id]
        found = passed[-1].data.get("evaluations", []) if passed else []
        shown = ", ".join(f"{e['gate']} {e['outcome']}" for e in found) or "no gates"
        return f"{step_id} passed ({shown})"

    def _passed_steps(self) -> set[str]:
        return {e.step for e in self.store.events(self.run_id, "step_passed")}


def rollback_target(runbook: Runbook, step: Step, passed: set[str]) -> tuple[str, float]:
    """(route, weight) to go back to: the named step's weight, else the last weight of this
    route whose gates passed, else 0."""
    route = step.settings["route"]
    if step.rollback_to:
        target = runbook.step(step.rollback_to)
        if target.action == "set_weight":
            return route, target.settings["weight"]
    earlier = runbook.steps[: runbook.index(step.id)]
    for previous in reversed(earlier):
        if (
            previous.action == "set_weight"
            and previous.settings["route"] == route
            and previous.id in passed
        ):
            return route, previous.settings["weight"]
    return route, 0


def _why(evaluations: list[Evaluation]) -> str:
    return "; ".join(f"{e.gate} {e.outcome}: {e.reason}" for e in evaluations) or "no gate passed"


def _brief(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items() if k != "output")[:200]
