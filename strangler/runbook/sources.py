"""Where gates read from: every proxy replica's /metrics or Prometheus, CDC, the route table.

Thin shells over real sources. CDC figures come from the projects' own commands
(`strangler cdc status|reconcile --json`, Django's checks), run as subprocesses because the
monolith and the service are two Django projects that cannot share one process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from strangler.control import ValidationFailed, open_store
from strangler.control.model import Backend, Route
from strangler.control.store import StoreUnavailable
from strangler.runbook import gates, metrics
from strangler.runbook.definition import Gate
from strangler.runbook.gates import Evaluation, Traffic
from strangler.runbook.metrics import Scrape

CHECK_ID = re.compile(r"\bcdc\.[EW]\d{3}\b.*")
# Each replica's counters and gauges as Prometheus last scraped them, one instant query per
# metric: (aggregation over a replica's series, metric, labels kept). A window is then the
# difference from a baseline, as with /metrics. Not increase(): it needs two samples of a
# series and never counts the first one's value, so the errors of a status first seen in
# the window went unseen for a scrape interval, and were undercounted after it.
PROMQL: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "requests": ("sum", metrics.REQUESTS, ("route", "backend", "status")),
    "buckets": ("sum", f"{metrics.LATENCY}_bucket", ("route", "backend", "le")),
    "fallbacks": ("sum", metrics.FALLBACKS, ("route",)),
    "breaker": ("max", metrics.BREAKER, ("backend",)),
    "version": ("min", metrics.VERSION, ()),
    "started": ("max", f"{metrics.STARTED} and on (job, instance) {metrics.VERSION}", ()),
}
COUNTED = ("requests", "buckets", "fallbacks")  # never negative or NaN on a strangler proxy
# The proxies Prometheus scraped within the hour and cannot scrape now: their figures are
# missing from every sum above, so nothing read through Prometheus may be judged.
PROXIES_DOWN = "up == 0 and on (job, instance) max_over_time(strangler_proxy_config_version[1h])"
VERSION_WAIT_S = 10.0
MIN_READ_S = 1.0  # what a source read gets at its step's deadline, or after it


class SourceError(Exception):
    """A source could not be read; gates turn this into 'inconclusive' with the message."""


@dataclass(frozen=True)
class Environment:
    """Where a run reads and acts; stored with the run so `resume` uses the same places."""

    routes: str
    metrics: tuple[str, ...] = ()
    prometheus: str = ""
    source_settings: str = ""
    target_settings: str = ""
    monolith_source: str = ""
    parity_store: str = ""
    allow_commands: bool = False
    command_timeout: float = 600.0
    process_env: dict[str, str] = field(default_factory=dict)  # for CDC and command programs
    # where those programs run ("" = the runner's own); `python -m` puts it first on sys.path
    cwd: str = ""

    def child_env(self) -> dict[str, str]:
        """The environment of the programs a run starts: the runner's, plus the run's own."""
        return {**os.environ, **self.process_env}

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"metrics": list(self.metrics)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Environment:
        return cls(**(data | {"metrics": tuple(data.get("metrics", ()))}))


def route_and_backends(env: Environment, route_id: str) -> tuple[Route, Backend, Backend]:
    """The route and its monolith and service backends, read through strangler.control."""
    try:
        store = open_store(env.routes)
        try:
            table = store.current().table
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()
    except (ValidationFailed, StoreUnavailable) as error:
        raise SourceError(f"the route table cannot be read: {error}") from error
    route = table.route(route_id)
    if route is None:
        raise SourceError(f"route table {env.routes} has no route {route_id!r}")
    return route, table.backends[route.monolith], table.backends[route.service]


class ProxyReader:
    """The proxies' figures over a window: /metrics of every replica, or Prometheus.

    `within` cuts each read's timeout (Window.within: to the time left before a step's
    deadline); by default a read waits its full timeout."""

    def __init__(self, env: Environment, within: Callable[[float], float] = float) -> None:
        self.env = env
        self.within = within

    @property
    def source(self) -> str:
        if self.env.prometheus:
            return f"prometheus {self.env.prometheus}"
        return "metrics " + ", ".join(self.env.metrics)

    def baseline(self) -> dict[str, Any]:
        """What the window starts from: each replica's counters now."""
        found: dict[str, Any] = {"at": time.time(), "replicas": {}}
        if self.env.prometheus:
            try:
                replicas = self._prometheus()
            except SourceError:
                replicas = {}  # Prometheus down now: see window() for what that allows
            found["replicas"] = {name: scrape.to_json() for name, scrape in replicas.items()}
            return found
        for url in self.env.metrics:
            try:
                found["replicas"][url] = self._scrape(url).to_json()
            except SourceError:
                found["replicas"][url] = None  # down now: see window() for what that allows
        return found

    def window(self, baseline: dict[str, Any]) -> Scrape:
        """Everything since `baseline`, replicas summed; SourceError if any cannot be read.

        A replica with no baseline reading counts from zero only when it started after the
        baseline (by its process_start_time_seconds): one that ran before it (unreadable at
        the flip, or Prometheus down then) would bring its traffic from before the flip,
        which dilutes the errors since. A replica in the baseline that the source no longer
        lists (taken out of Prometheus' targets) would leave its figures out of the sums.
        Either way the window cannot be told: SourceError.
        """
        bases = baseline.get("replicas", {})
        now = self._replicas()
        gone = sorted(name for name, base in bases.items() if base and name not in now)
        if gone:
            raise SourceError(
                f"{self.source} no longer reports the proxy replica {', '.join(gone)} it "
                "reported at the window's start: its figures would be missing from the sums"
            )
        windows, at = [], baseline.get("at")  # no "at": no baseline taken, all from zero
        for name, scrape in now.items():
            base = bases.get(name)
            if not base and at is not None and (scrape.started is None or scrape.started < at):
                raise SourceError(
                    f"the proxy replica {name} could not be read at the window's start and "
                    "was running before it: its figures since then cannot be told from those "
                    "before"
                )
            windows.append(metrics.delta(scrape, Scrape.from_json(base) if base else None))
        return metrics.combine(windows)

    def wait_for_version(self, version: int, timeout: float = VERSION_WAIT_S) -> bool:
        """Wait until every replica serves route table `version` (a flip takes effect on
        each proxy within about a second), so a window never starts before the flip."""
        if not self.env.metrics and not self.env.prometheus:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                serving = self.now().config_version
            except SourceError:
                serving = None
            if serving is not None and serving >= version:
                return True
            time.sleep(0.1)
        return False

    def now(self) -> Scrape:
        """The current gauges (breaker states)."""
        return metrics.combine(self._replicas().values())

    def _replicas(self) -> dict[str, Scrape]:
        """Every replica's figures now, by URL (or Prometheus job/instance); SourceError if
        any cannot be read."""
        if self.env.prometheus:
            return self._prometheus()
        if not self.env.metrics:
            raise SourceError("no proxy metrics source: pass --metrics URL or --prometheus URL")
        return {url: self._scrape(url) for url in self.env.metrics}

    def _scrape(self, url: str) -> Scrape:
        timeout = self.within(5)
        try:
            response = httpx.get(url, timeout=timeout)
            response.raise_for_status()
            scrape = metrics.parse(response.text)
        except httpx.TimeoutException as error:
            raise SourceError(f"cannot read {url}: no answer within {timeout:.1f}s") from error
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise SourceError(f"cannot read {url}: {error}") from error
        if scrape.config_version is None:
            raise SourceError(f"{url} is not a strangler proxy's /metrics (no {metrics.VERSION})")
        return scrape

    def _query(self, query: str) -> list[dict[str, Any]]:
        url = f"{self.env.prometheus.rstrip('/')}/api/v1/query"
        timeout = self.within(10)
        try:
            response = httpx.get(url, params={"query": query}, timeout=timeout)
            body = response.json()
        except httpx.TimeoutException as error:
            raise SourceError(f"cannot query {url}: no answer within {timeout:.1f}s") from error
        except (httpx.HTTPError, ValueError) as error:
            raise SourceError(f"cannot query {url}: {error}") from error
        if body.get("status") != "success":
            raise SourceError(f"{url} refused {query!r}: {body.get('error', body)}")
        return list(body["data"]["result"])

    def _prometheus(self) -> dict[str, Scrape]:
        down = sorted(i["metric"].get("instance", "?") for i in self._query(PROXIES_DOWN))
        if down:
            raise SourceError(
                f"prometheus {self.env.prometheus} cannot scrape the proxy replica "
                f"{', '.join(down)} (up == 0): its figures are missing from the sums"
            )
        found: dict[str, dict[str, dict[tuple[str, ...], float]]] = {}
        for name, (aggregation, metric, kept) in PROMQL.items():
            by = ", ".join(("job", "instance", *kept))
            for item in self._query(f"{aggregation} by ({by}) ({metric})"):
                labels = item["metric"]
                replica = f"{labels.get('job', '')}/{labels.get('instance', '')}"
                key = tuple(labels.get(label, "") for label in kept)
                value = float(item["value"][1])
                if name in COUNTED and not value >= 0:  # NaN too, as parse() of /metrics
                    raise SourceError(
                        f"prometheus {self.env.prometheus}: {metric} of {replica} is {value}:"
                        " not a count (a negative one would cancel another replica's)"
                    )
                found.setdefault(replica, {}).setdefault(name, {})[key] = value
        replicas = {replica: _scrape_of(series) for replica, series in found.items()}
        if not any(scrape.config_version is not None for scrape in replicas.values()):
            raise SourceError(
                f"prometheus {self.env.prometheus} has no strangler proxy ({metrics.VERSION} "
                "of none): it does not scrape the proxies (check its scrape config and the URL)"
            )
        return replicas


def _scrape_of(series: dict[str, dict[tuple[str, ...], float]]) -> Scrape:
    """One replica's Prometheus series (by PROMQL name, then kept labels) as a Scrape."""
    return Scrape(
        requests={(r, b, s): v for (r, b, s), v in series.get("requests", {}).items()},
        buckets={(r, b, float(le)): v for (r, b, le), v in series.get("buckets", {}).items()},
        fallbacks={route: v for (route,), v in series.get("fallbacks", {}).items()},
        breaker={backend: v for (backend,), v in series.get("breaker", {}).items()},
        config_version=next(iter(series.get("version", {}).values()), None),
        started=next(iter(series.get("started", {}).values()), None),
    )


def strangler_cdc(env: Environment, settings: str, *args: str, timeout: float = 600) -> Any:
    """Run `strangler cdc --settings S ARGS --json`; its JSON (exit 1 = drift or dead letters)."""
    if not settings:
        raise SourceError(
            "no Django settings for this CDC reading: pass --source-settings / --target-settings"
        )
    argv = [sys.executable, "-m", "strangler", "cdc", "--settings", settings, *args]
    result = run_program(argv, env, timeout)
    if result.returncode not in (0, 1):
        raise SourceError(
            f"{' '.join(argv[2:])} failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}"
        )
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as error:
        raise SourceError(
            f"{' '.join(argv[2:])} printed no JSON: {result.stdout[-300:]}"
        ) from error


def run_program(
    argv: list[str], env: Environment, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion in the run's environment; SourceError if it cannot."""
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env.child_env(),
            cwd=env.cwd or None,
        )
    except subprocess.TimeoutExpired as error:
        raise SourceError(f"{' '.join(argv)} still running after {timeout:.0f}s") from error
    except OSError as error:
        raise SourceError(f"cannot run {argv[0]}: {error}") from error


def analyze_check(env: Environment, boundaries: str, timeout: float = 600) -> dict[str, Any]:
    """`strangler analyze SOURCE --check FILE --json` on the monolith's code (read, not run)."""
    if not env.monolith_source:
        raise SourceError("boundaries_clean needs --monolith-source PATH (the monolith's code)")
    argv = [
        sys.executable,
        "-m",
        "strangler",
        "analyze",
        env.monolith_source,
        "--check",
        boundaries,
        "--json",
        "--jobs",
        "1",
    ]
    result = run_program(argv, env, timeout)
    if result.returncode not in (0, 1):
        raise SourceError(
            f"strangler analyze --check failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-300:]}"
        )
    try:
        found: dict[str, Any] = json.loads(result.stdout)
    except ValueError as error:
        raise SourceError(f"strangler analyze --check printed no JSON: {error}") from error
    return found


def cdc_check_problems(env: Environment, window: Window | None = None) -> list[str]:
    """Django's system checks of the CDC app (with the database) in both projects, each
    within the time left to the step's deadline (`window`)."""
    if not (env.source_settings and env.target_settings):
        raise SourceError(
            "cdc_checks checks both projects: pass --source-settings (the capturing monolith) "
            "and --target-settings (the receiving service)"
        )
    problems = []
    for settings in (env.source_settings, env.target_settings):
        argv = [
            sys.executable,
            "-m",
            "django",
            "check",
            "--tag",
            "strangler_cdc",
            "--database",
            "default",
            "--settings",
            settings,
        ]
        result = run_program(argv, env, window.within(120) if window else 120)
        found = CHECK_ID.findall(result.stdout + result.stderr)
        if result.returncode != 0 and not found:
            raise SourceError(f"check in {settings} failed: {result.stderr.strip()[-300:]}")
        problems += [f"{settings}: {line.strip()}" for line in found]
    return problems


def parity(
    env: Environment, route: str, min_parity: float, min_samples: int, window: Window
) -> Evaluation:
    """strangler.parity's own gate over the comparisons stored since the window began."""
    from strangler.parity import evaluate_gate, open_store, summary

    if not env.parity_store:
        raise SourceError("no parity store: pass --parity-store (the proxies' --parity-store)")
    remote = env.parity_store.startswith(("postgres://", "postgresql://"))
    if not remote and not Path(env.parity_store).exists():  # opening it would create it
        raise SourceError(
            f"no parity store at {env.parity_store}: is --parity-store the path the proxies "
            "were given? (they create it when they start)"
        )
    store = open_store(env.parity_store)
    try:
        found = summary(store, route, since=window.baseline.get("at"))
    finally:
        store.close()
    result = evaluate_gate(found, min_parity, min_samples)
    readings = {
        "parity": found.parity,
        "raw_parity": found.raw_parity,
        "endpoints": [
            {"endpoint": e.endpoint, "samples": e.samples, "parity": e.parity}
            for e in found.endpoints
        ],
    }
    return Evaluation(
        "parity",
        result.outcome,
        result.line.split(": ", 1)[-1],
        f"parity store {env.parity_store}",
        f"parity >= {min_parity:g}% over >= {min_samples} comparisons",
        readings,
        {"comparisons": found.samples},
    )


@dataclass(frozen=True)
class Window:
    """What a step's gates need besides their settings: when the window began, the route
    table version the step's flip made (None without one), approvals, and when the step's
    deadline falls (epoch s; None: no deadline)."""

    baseline: dict[str, Any]
    approved_by: str | None = None
    approval_why: str = ""
    flip_version: int | None = None
    deadline_at: float | None = None

    def within(self, seconds: float) -> float:
        """A source's timeout of `seconds`, cut to the time left until the step's deadline
        (at least MIN_READ_S): a slow source (a CDC command that hangs) never holds a round,
        and the step's verdict, up to its own 600 s past the deadline."""
        if self.deadline_at is None:
            return seconds
        return max(MIN_READ_S, min(seconds, self.deadline_at - time.time()))


def serving_the_flip(scrape: Scrape, window: Window) -> Scrape:
    """`scrape`, or SourceError while a replica serves a route table older than the step's
    flip: its figures are those of the route as it was before the flip."""
    flip, serving = window.flip_version, scrape.config_version
    if flip is not None and (serving is None or serving < flip):
        shown = "no route table version" if serving is None else f"route table version {serving:g}"
        raise SourceError(
            f"a proxy replica serves {shown}, not yet version {flip} of this step's flip: "
            "its figures are of the route before the flip"
        )
    return scrape


def evaluate(gate: Gate, env: Environment, window: Window) -> Evaluation:
    """Read what `gate` needs and judge it; a source that cannot be read is inconclusive."""
    try:
        return _evaluate(gate, env, window)
    except SourceError as error:
        return Evaluation(gate.kind, "inconclusive", str(error), "(unreadable)", gate.describe())
    except Exception as error:  # any failure to read is no reading: never a pass, never a crash
        return Evaluation(
            gate.kind,
            "inconclusive",
            f"{type(error).__name__}: {error}",
            "(unreadable)",
            gate.describe(),
        )


def _evaluate(gate: Gate, env: Environment, window: Window) -> Evaluation:
    s = gate.settings
    if gate.kind in ("error_rate", "service_error_rate", "latency_ratio", "traffic_on_monolith"):
        route, monolith, service = route_and_backends(env, s["route"])
        proxy = ProxyReader(env, window.within)
        scrape = serving_the_flip(proxy.window(window.baseline), window)
        quantile = float(s.get("quantile", 0.99))
        ours = metrics.traffic(scrape, route.id, service.name, quantile, fallbacks_count=1)
        theirs = metrics.traffic(scrape, route.id, monolith.name, quantile, fallbacks_count=-1)
        if gate.kind == "traffic_on_monolith":
            if ours.requests is None and theirs.requests is not None:
                ours = Traffic(0.0, 0.0)  # the service has no series: it served nothing
            return gates.traffic_on_monolith(ours, theirs, int(s["min_requests"]), proxy.source)
        if gate.kind == "service_error_rate":
            return gates.service_error_rate(
                ours, float(s["max_rate"]), int(s["min_requests"]), proxy.source
            )
        if gate.kind == "error_rate":
            return gates.error_rate(
                ours, theirs, float(s["max_delta"]), int(s["min_requests"]), proxy.source
            )
        return gates.latency_ratio(
            ours, theirs, float(s["max_ratio"]), int(s["min_requests"]), proxy.source
        )
    if gate.kind == "breaker_closed":
        _, _, service = route_and_backends(env, s["route"])
        proxy = ProxyReader(env, window.within)
        breakers = serving_the_flip(proxy.now(), window).breaker
        return gates.breaker_closed(breakers.get(service.name), service.name, proxy.source)
    if gate.kind == "service_healthy":
        _, _, service = route_and_backends(env, s["route"])
        url = f"{service.url}{service.health_path}"
        try:
            # a redirect is not followed: its target is not the service's health path
            answer = httpx.get(url, timeout=window.within(5), follow_redirects=False)
            return gates.service_healthy(answer.status_code, "", url)
        except httpx.HTTPError as error:
            return gates.service_healthy(None, repr(error), url)
    if gate.kind == "parity":
        return parity(env, s["route"], float(s["min_parity"]), int(s["min_samples"]), window)
    if gate.kind == "cdc_lag":
        # What the service applied, then what the source holds after it: end to end.
        applied = strangler_cdc(
            env, env.target_settings, "status", "--json", timeout=window.within(600)
        )
        through = applied.get("applied_through")
        if not isinstance(through, dict):
            raise SourceError(
                f"strangler cdc --settings {env.target_settings} status reports no "
                "applied_through (a receiving project with strangler.cdc of this version?)"
            )
        # Per-partition offsets, where the receiver reports them: exact in publish order.
        offsets = applied.get("applied_offsets")
        exact = ["--applied-offsets", json.dumps(offsets)] if isinstance(offsets, dict) else []
        status = strangler_cdc(
            env,
            env.source_settings,
            "status",
            "--json",
            "--applied-through",
            json.dumps(through),
            *exact,
            timeout=window.within(600),
        )
        return gates.cdc_lag(
            status.get("oldest_unapplied_seconds"),
            status.get("unapplied"),
            float(s["max_seconds"]),
            f"strangler cdc --settings {env.source_settings} status --applied-through (what "
            f"strangler cdc --settings {env.target_settings} status applied)",
            backlog=status.get("outbox_backlog"),
        )
    if gate.kind == "dead_letters":
        status = strangler_cdc(
            env, env.target_settings, "status", "--json", timeout=window.within(600)
        )
        return gates.dead_letters(
            status.get("dead_letters"),
            status.get("parked_keys"),
            f"strangler cdc --settings {env.target_settings} status",
        )
    if gate.kind == "drift":
        report = strangler_cdc(
            env, env.target_settings, "reconcile", "--json", timeout=window.within(600)
        )
        return gates.drift(report, f"strangler cdc --settings {env.target_settings} reconcile")
    if gate.kind == "boundaries_clean":
        return gates.boundaries_clean(
            analyze_check(env, s["boundaries"], window.within(600)),
            f"strangler analyze --check {s['boundaries']}",
        )
    if gate.kind == "cdc_checks":
        return gates.cdc_checks(cdc_check_problems(env, window), "django check --tag strangler_cdc")
    if gate.kind == "approval":
        return gates.approval(window.approved_by, window.approval_why, "strangler runbook approve")
    raise SourceError(f"no reader for gate {gate.kind!r}")
