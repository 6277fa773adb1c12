"""Gates tried the way a hostile platform engineer would: readings that are stale, partial or
from before the bake, against the real proxy. A gate that passes on them would let the
runbook move traffic onto a broken service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from strangler.control import open_store
from strangler.runbook import runs
from strangler.runbook.definition import Gate, parse
from strangler.runbook.engine import Engine
from strangler.runbook.sources import Environment, ProxyReader, Window, evaluate
from strangler.runbook.store import Run, RunStore
from tests.proxy.helpers import ProxyProcess, table
from tests.runbook.conftest import Shoppers, Stack
from tests.runbook.test_cli import cli
from tests.runbook.test_resume import detached

Answer = Callable[[str], tuple[int, str]]  # a GET's path -> (status, body)


class Served(ThreadingHTTPServer):
    """A real HTTP server in a thread, answering each GET with `answer(path)`."""

    daemon_threads = True

    def __init__(self, answer: Answer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Served

    def do_GET(self) -> None:
        status, text = self.server.answer(self.path)
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def failing_service(failing: threading.Event, health_s: float = 0.0) -> Served:
    """A service answering 200 until `failing` is set, then 500; its health path takes
    `health_s` to answer 200 and sets `failing` when it is asked."""

    def answer(path: str) -> tuple[int, str]:
        if path == "/healthz":
            failing.set()
            time.sleep(health_s)
            return 200, '{"ok": true}'
        return (500 if failing.is_set() else 200), '{"ok": true}'

    return Served(answer)


def drive(
    text: str, env: Environment, tmp_path: Path, *browsing: Shoppers
) -> tuple[Run, list[list[dict[str, Any]]], str]:
    """Run runbook `text` until it stops while `browsing` send traffic (stopped after): the
    run, every gate round's evaluations, and what the runner printed."""
    runbook = parse(text, "hostile.toml", {})
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    run = store.create(
        runbook.name, "hostile.toml", text, {}, env.to_json(), runbook.steps[0].id, "t", ""
    )
    lines: list[str] = []
    try:
        finished = Engine(store, run.id, "tester", lines.append).run()
        rounds = [e.data["evaluations"] for e in store.events(run.id, "gates")]
    finally:
        for shoppers in browsing:
            shoppers.finish()
        store.close()
    return finished, rounds, "\n".join(lines)


@pytest.fixture
def services() -> Iterator[tuple[Served, Served]]:
    failing = threading.Event()  # set by the slow one's health check, failing the catalog
    catalog, slow = failing_service(failing), failing_service(failing, health_s=3.0)
    try:
        yield catalog, slow
    finally:
        catalog.stop()
        slow.stop()


SLOW_ROUND = """
name = "slow-round"

[[steps]]
id = "canary-50"
action = "set_weight"
route = "products"
weight = 50
gates = [
  { gate = "breaker_closed", route = "products" },
  { gate = "service_healthy", route = "reports" },
]
bake = 2
interval = 0.2
deadline = 20
on_fail = "rollback"
"""


def test_a_gate_read_before_the_bake_ended_does_not_pass_the_step(
    stack: Stack, services: tuple[Served, Served], tmp_path
):
    # The catalog starts failing as soon as the gates begin (the slow health check of
    # another route is asked): its breaker opens while that check takes 3 s. The breaker
    # was read closed at 0 s, before the 2 s bake ended; that reading must not pass the step.
    catalog, slow = services
    routes = table(stack.monolith.url, catalog.url)
    routes["backends"]["catalog"]["breaker_cooldown"] = 60.0
    routes["backends"]["reports"] = {"url": slow.url, "health_path": "/healthz", "timeout": 10}
    routes["routes"].append(
        {"id": "reports", "prefix": "/reports", "monolith": "monolith", "service": "reports"}
    )
    open_store(str(stack.routes)).apply(routes, "test", "two services")
    env = Environment(routes=str(stack.routes), metrics=(stack.metrics_url,))
    finished, rounds, said = drive(SLOW_ROUND, env, tmp_path, Shoppers(stack.proxy.url))
    assert finished.state == "paused", said
    assert stack.weight() == 0  # rolled back
    assert {e["gate"]: e["outcome"] for e in rounds[-1]}["breaker_closed"] == "fail"


BEHIND = """
name = "behind"

[[steps]]
id = "canary-20"
action = "set_weight"
route = "products"
weight = 20
gates = [
  { gate = "error_rate", route = "products", max_delta = 0.05, min_requests = 5 },
  { gate = "breaker_closed", route = "products" },
]
bake = 0.5
interval = 0.3
deadline = 14
on_fail = "rollback"
"""


def test_gates_hold_while_a_replica_still_serves_the_table_before_the_flip(stack: Stack, tmp_path):
    # The second replica reads a route store of its own that never gets the flip (a replica
    # cut off from the store keeps serving its last table): it still sends the route's
    # users to the monolith, so what the gates read is not the 20% the step set.
    behind_routes = tmp_path / "behind.toml"
    open_store(str(behind_routes)).apply(
        table(stack.monolith.url, stack.catalog.url), "test", "seed"
    )
    behind = ProxyProcess("--config", str(behind_routes))
    env = Environment(
        routes=str(stack.routes), metrics=(stack.metrics_url, f"{behind.admin_url}/metrics")
    )
    try:
        browsing = Shoppers(stack.proxy.url), Shoppers(behind.url)
        finished, rounds, said = drive(BEHIND, env, tmp_path, *browsing)
    finally:
        behind.stop()
    assert finished.state == "paused", said
    assert "deadline 14s reached" in finished.reason
    assert rounds and all(e["outcome"] == "inconclusive" for r in rounds for e in r)
    assert "route table version 1" in rounds[-1][0]["reason"], rounds[-1][0]["reason"]


def unreachable_routes(tmp_path: Path) -> Path:
    """A route table file (one route, weight 0) whose backends nothing listens on: for gates
    that read only the table's names, never its backends."""
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:1", "http://127.0.0.1:2"), "t", "")
    return routes


def proxy_metrics(breaker: str) -> str:
    """A strangler proxy's /metrics (the lines the gates read) with this breaker state."""
    return (
        "# TYPE strangler_proxy_requests_total counter\n"
        'strangler_proxy_requests_total{route="products",backend="catalog",status="200"} 90\n'
        "# TYPE strangler_proxy_breaker_state gauge\n"
        f'strangler_proxy_breaker_state{{backend="catalog"}} {breaker}\n'
        "# TYPE strangler_proxy_config_version gauge\n"
        "strangler_proxy_config_version 1\n"
    )


@pytest.mark.parametrize("state", ["NaN", "-1"])
def test_a_breaker_state_that_is_no_state_is_no_reading_not_closed(state: str, tmp_path: Path):
    # Something at a replica's /metrics URL reports the service's breaker as NaN or -1 next
    # to a closed one: the worst state of the two is unknown, never "closed".
    routes = unreachable_routes(tmp_path)
    odd, closed = (Served(lambda _, b=b: (200, proxy_metrics(b))) for b in (state, "0"))
    try:
        env = Environment(
            routes=str(routes), metrics=(f"{odd.url}/metrics", f"{closed.url}/metrics")
        )
        found = evaluate(Gate("breaker_closed", {"route": "products"}), env, Window({}))
    finally:
        odd.stop()
        closed.stop()
    assert found.outcome == "inconclusive", found


def test_a_replica_reporting_negative_counts_is_unreadable_not_subtracted(tmp_path: Path):
    # One replica's service errors, and something at another replica's URL reporting them
    # negative: summed, the errors vanished and the gate passed.
    routes = unreachable_routes(tmp_path)
    counts = '{route="products",backend="%s",status="%s"} %s\n'
    texts = [
        "strangler_proxy_config_version 1\n# TYPE strangler_proxy_requests_total counter\n"
        + "".join(f"strangler_proxy_requests_total{counts % line}" for line in lines)
        for lines in (
            [("catalog", "200", 60), ("catalog", "500", 40), ("monolith", "200", 100)],
            [("catalog", "500", -40)],
        )
    ]
    replicas = [Served(lambda _, t=t: (200, t)) for t in texts]
    try:
        env = Environment(routes=str(routes), metrics=tuple(f"{r.url}/metrics" for r in replicas))
        gate = Gate("error_rate", {"route": "products", "max_delta": 0.05, "min_requests": 10})
        found = evaluate(gate, env, Window({}))
    finally:
        for replica in replicas:
            replica.stop()
    assert found.outcome == "inconclusive", found
    assert "not a count" in found.reason


SLOW_CANARY = """
name = "slow-canary"

[[steps]]
id = "canary-10"
action = "set_weight"
route = "products"
weight = 10
gates = [{ gate = "service_healthy", route = "products" }]
interval = 0.2
on_fail = "rollback"

[[steps]]
id = "canary-50"
action = "set_weight"
route = "products"
weight = 50
"""


@pytest.mark.parametrize("steer", ["abort", "rollback"])
def test_a_run_aborted_or_rolled_back_during_a_gate_round_stays_so(steer: str, tmp_path: Path):
    # The gate round takes 2 s (a slow health check); someone aborts the run, or rolls it
    # back, meanwhile. The round then passes: its record must not set the run running again
    # and go on to the next step's 50%.
    asked = threading.Event()

    def health(path: str) -> tuple[int, str]:
        asked.set()
        time.sleep(2)
        return 200, "ok"

    service = Served(health)
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:1", service.url), "t", "seed")
    (tmp_path / "slow.toml").write_text(SLOW_CANARY)
    store = ("--store", str(tmp_path / "runs.sqlite3"))
    created = cli("run", "slow.toml", "--routes", str(routes), *store, "--detach", "--json",
                  cwd=tmp_path)  # fmt: skip
    run_id = json.loads(created.stdout)["id"]
    runner = subprocess.Popen(
        [sys.executable, "-m", "strangler", "runbook", "resume", run_id, *store],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert asked.wait(30), "the gate round never began"
        steered = cli(steer, run_id, *store, "--who", "oncall", "--why", "p99 up", cwd=tmp_path)
        assert steered.returncode == 0, steered.stderr
        said, _ = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
        service.stop()
    assert runner.returncode == 1, said
    report = json.loads(cli("status", run_id, *store, "--json", cwd=tmp_path).stdout)
    assert report["state"] == ("aborted" if steer == "abort" else "paused"), said
    assert report["step"] == "canary-10", said
    assert float(open_store(str(routes)).current().table.route("products").weight) < 50


def test_cdc_checks_without_both_projects_is_no_answer_not_a_pass(tmp_path: Path):
    # Run without --source-settings / --target-settings, the checks ran in no project at all
    # and reported "no problems": the preflight passed having checked nothing.
    found = evaluate(Gate("cdc_checks", {}), Environment(routes=str(tmp_path)), Window({}))
    assert found.outcome == "inconclusive", found
    assert "--source-settings" in found.reason and "--target-settings" in found.reason


def test_a_replica_restarted_since_the_baseline_counts_from_its_start(tmp_path: Path):
    # The proxy restarts inside the window (its process_start_time_seconds moves) and then
    # serves more than before, so no counter went down: read as if it had not restarted,
    # the window lost the 100 errors it counted before the baseline and passed at 4.8%.
    routes = unreachable_routes(tmp_path)
    lines = '{route="products",backend="catalog",status="%s"} %d\n'

    def proxy(started: int, ok: int, failed: int) -> str:
        return (
            "# TYPE strangler_proxy_requests_total counter\n"
            + "".join(f"strangler_proxy_requests_total{lines % c}" for c in (("200", ok),
                                                                            ("500", failed)))
            + f"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started}\n"
            + "strangler_proxy_config_version 1\n"
        )  # fmt: skip

    serving = [proxy(1000, ok=5, failed=100)]
    replica = Served(lambda _: (200, serving[0]))
    env = Environment(routes=str(routes), metrics=(f"{replica.url}/metrics",))
    try:
        baseline = ProxyReader(env).baseline()
        serving[0] = proxy(2000, ok=200, failed=110)  # restarted: 110 of 310 failed since
        gate = Gate("service_error_rate", {"route": "products", "max_rate": 0.15,
                                           "min_requests": 50})  # fmt: skip
        found = evaluate(gate, env, Window(baseline))
    finally:
        replica.stop()
    assert found.outcome == "fail", found
    assert found.samples == {"service_requests": 310}


SERVICE_ERRORS = Gate("service_error_rate", {"route": "products", "max_rate": 0.15,
                                             "min_requests": 50})  # fmt: skip


def _counts(started: float, ok: int, failed: int) -> str:
    """A strangler proxy's /metrics: the service's answers and the process's start time."""
    lines = '{route="products",backend="catalog",status="%s"} %d\n'
    return (
        "# TYPE strangler_proxy_requests_total counter\n"
        + "".join(f"strangler_proxy_requests_total{lines % c}" for c in (("200", ok),
                                                                        ("500", failed)))
        + f"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started}\n"
        + "strangler_proxy_config_version 1\n"
    )  # fmt: skip


@pytest.mark.parametrize("restarted", [False, True])
def test_a_replica_unreadable_at_the_flip_counts_from_zero_only_if_it_restarted(
    restarted: bool, tmp_path: Path
):
    # The replica's /metrics timed out when the baseline was taken, though it was serving:
    # its window counted from zero, so its 1,000 good answers from before the flip hid the
    # 60 errors of 60 since (5.7% < 15%: pass). Started after the baseline, zero is right.
    routes = unreachable_routes(tmp_path)
    serving = [(500, "")]
    replica = Served(lambda _: serving[0])
    env = Environment(routes=str(routes), metrics=(f"{replica.url}/metrics",))
    try:
        baseline = ProxyReader(env).baseline()
        if restarted:
            serving[0] = (200, _counts(time.time() + 1, ok=0, failed=60))
        else:
            serving[0] = (200, _counts(1000, ok=1000, failed=60))
        found = evaluate(SERVICE_ERRORS, env, Window(baseline))
    finally:
        replica.stop()
    if restarted:
        assert found.outcome == "fail" and found.samples == {"service_requests": 60}, found
    else:
        assert found.outcome == "inconclusive", found
        assert "could not be read at the window's start" in found.reason, found.reason


def _prometheus(replicas: dict[str, tuple[float, float]]) -> Answer:
    """A Prometheus API answering the gates' instant queries: each replica (its instance
    name) with its requests_total of status 200 and 500, started at 1000."""

    def answer(path: str) -> tuple[int, str]:
        query = parse_qs(urlsplit(path).query).get("query", [""])[0]
        result: list[dict[str, Any]] = []
        for instance, counts in replicas.items():
            who = {"job": "proxy", "instance": instance}
            if query.startswith("sum by") and "requests_total" in query:
                for status, count in zip(("200", "500"), counts, strict=True):
                    labels = {**who, "route": "products", "backend": "catalog", "status": status}
                    result.append({"metric": labels, "value": [0, repr(count)]})
            elif query.startswith(("min by", "max by")) and "config_version" in query:
                value = "1000" if "process_start_time" in query else "1"
                result.append({"metric": who, "value": [0, value]})
        return 200, json.dumps({"status": "success", "data": {"result": result}})

    return answer


def test_a_replica_prometheus_stops_listing_is_no_data_not_a_smaller_sum(tmp_path: Path):
    # Taken out of Prometheus' targets mid-window (not `up == 0`: no series at all), its
    # errors simply left the sums: the other replica's 100 good answers passed the gate.
    routes = unreachable_routes(tmp_path)
    listed = {"a:9090": (100.0, 0.0), "b:9090": (0.0, 0.0)}
    prometheus = Served(lambda path: _prometheus(listed)(path))
    env = Environment(routes=str(routes), prometheus=prometheus.url)
    try:
        baseline = ProxyReader(env).baseline()
        listed["a:9090"] = (200.0, 0.0)  # 100 good answers since; b's errors are unseen
        listed.pop("b:9090")
        found = evaluate(SERVICE_ERRORS, env, Window(baseline))
    finally:
        prometheus.stop()
    assert found.outcome == "inconclusive", found
    assert "no longer reports the proxy replica proxy/b:9090" in found.reason, found.reason


def test_a_negative_count_through_prometheus_is_unreadable_not_subtracted(tmp_path: Path):
    # /metrics refuses it already; through Prometheus it cancelled the other replica's errors
    # (10 of 110 failed: 9% < 15%, pass).
    routes = unreachable_routes(tmp_path)
    prometheus = Served(_prometheus({"a:9090": (100.0, 100.0), "b:9090": (0.0, -90.0)}))
    env = Environment(routes=str(routes), prometheus=prometheus.url)
    try:
        found = evaluate(SERVICE_ERRORS, env, Window({}))
    finally:
        prometheus.stop()
    assert found.outcome == "inconclusive", found
    assert "not a count" in found.reason, found.reason


TO_10 = """
name = "to-10"

[[steps]]
id = "to-10"
action = "set_weight"
route = "products"
weight = 10
"""


@pytest.mark.parametrize("edit", ["weight = 90", "weight = = 90"])
def test_the_runbook_file_edited_or_broken_after_run_changes_nothing_of_the_run(
    edit: str, tmp_path: Path
):
    routes, run_id = detached(tmp_path, TO_10, str(tmp_path / "runs.sqlite3"))
    (tmp_path / "runbook.toml").write_text(TO_10.replace("weight = 10", edit))
    resumed = cli("resume", run_id, "--store", "runs.sqlite3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert float(open_store(str(routes)).current().table.route("products").weight) == 10


def edit_on_second_read(path: Path, first: str, second: str, until: subprocess.Popen[str]) -> None:
    """Serve `first` through the FIFO at `path` to its first reader, then `second` to any
    later one (an edit of the file landing between two reads), while `until` runs."""
    with path.open("w") as fifo:  # blocks until the first read opens it
        fifo.write(first)
    time.sleep(0.5)  # that read has seen its end; a second read now waits for a writer
    while until.poll() is None:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: nobody read the file again (yet)
            time.sleep(0.02)
            continue
        with os.fdopen(descriptor, "w") as fifo:
            fifo.write(second)


def test_the_runbook_text_stored_is_the_text_validated(tmp_path: Path):
    # `run` read the file to validate it and again to store it: an edit in between (here a
    # weight of 101) was stored unvalidated, and every resume ran (or choked on) it.
    routes = unreachable_routes(tmp_path)
    runbook = tmp_path / "runbook.toml"
    os.mkfifo(runbook)
    store = str(tmp_path / "runs.sqlite3")
    argv = ["run", "runbook.toml", "--routes", str(routes), "--store", store, "--detach", "--json"]
    running = subprocess.Popen(
        [sys.executable, "-m", "strangler", "runbook", *argv],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    editor = threading.Thread(
        target=edit_on_second_read,
        args=(runbook, TO_10, TO_10.replace("weight = 10", "weight = 101"), running),
        daemon=True,
    )
    editor.start()
    try:
        said, complaints = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
        editor.join(timeout=5)
    assert running.returncode == 0, complaints
    runs = RunStore(store)
    try:
        stored = runs.get(json.loads(said)["id"]).definition
    finally:
        runs.close()
    assert stored == TO_10


def test_a_metrics_url_that_is_not_a_strangler_proxy_says_so(tmp_path: Path):
    # --metrics pointed at some other exporter: not "no request data" but the wrong URL.
    routes = unreachable_routes(tmp_path)
    other = Served(lambda _: (200, "# TYPE node_load1 gauge\nnode_load1 0.5\n"))
    try:
        env = Environment(routes=str(routes), metrics=(f"{other.url}/metrics",))
        gate = Gate("service_error_rate", {"route": "products", "max_rate": 0.1, "min_requests": 5})
        found = evaluate(gate, env, Window({}))
    finally:
        other.stop()
    assert found.outcome == "inconclusive", found
    assert "not a strangler proxy's /metrics" in found.reason, found.reason


def _hangs(_: str) -> tuple[int, str]:
    time.sleep(15)
    return 200, ""


@pytest.mark.parametrize("source", ["metrics", "prometheus"])
def test_a_proxy_figures_source_that_hangs_is_cut_at_the_steps_deadline(source, tmp_path: Path):
    # A replica's /metrics (or Prometheus) accepts and never answers: each read waited its
    # full 5 s (10 s per Prometheus query), a step with 2 s left held past its deadline.
    routes = unreachable_routes(tmp_path)
    hung = Served(_hangs)
    try:
        if source == "metrics":
            env = Environment(routes=str(routes), metrics=(f"{hung.url}/metrics",))
        else:
            env = Environment(routes=str(routes), prometheus=hung.url)
        window = Window({}, deadline_at=time.time() + 2)
        found = evaluate(Gate("breaker_closed", {"route": "products"}), env, window)
    finally:
        hung.stop()
    assert found.outcome == "inconclusive", found
    waited = float(found.reason.rsplit("no answer within ", 1)[1].rstrip("s"))
    assert waited <= 2, found.reason


@pytest.mark.parametrize("status", [404, 302])
def test_a_health_path_answering_other_than_2xx_is_not_healthy(status: int, tmp_path: Path):
    # The route table's health path answers 404 (the wrong service behind the URL) or a
    # redirect (a login page in front of it): counted as "below 500", the step passed.
    service = Served(lambda _: (status, "moved" if status == 302 else "not here"))
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:1", service.url), "t", "seed")
    try:
        found = evaluate(
            Gate("service_healthy", {"route": "products"}),
            Environment(routes=str(routes)),
            Window({}),
        )
    finally:
        service.stop()
    assert found.outcome == "fail", found
    assert f"answered {status}" in found.reason and found.threshold == "health answer 2xx"


class Died(BaseException):
    """The runner's death (as under kill -9) at a chosen record: nothing after it runs."""


class DiesAt(RunStore):
    """A run store whose runner dies on its way to recording `kind` (never written)."""

    def __init__(self, location: str, kind: str) -> None:
        super().__init__(location)
        self.kind = kind

    def record(
        self, run_id: str, step: str, attempt: int, kind: str, *args: Any, **kw: Any
    ) -> None:
        if kind == self.kind:
            raise Died(kind)
        super().record(run_id, step, attempt, kind, *args, **kw)


UNHEALTHY_CANARY = """
name = "unhealthy-canary"

[[steps]]
id = "canary-10"
action = "set_weight"
route = "products"
weight = 10
gates = [{ gate = "service_healthy", route = "products" }]
interval = 0.2
on_fail = "rollback"
"""


def started(tmp_path: Path, text: str, service_url: str, store: RunStore) -> str:
    """A route table at weight 0 on `service_url` and a run of `text` started on it (its
    routes claimed, as `strangler runbook run` does); the run's id."""
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:1", service_url), "t", "seed")
    env = Environment(routes=str(routes), cwd=str(tmp_path))
    return runs.start(store, parse(text, "hostile.toml", {}), text, {}, env, "t", "").id


def test_a_rollback_recorded_before_a_crash_is_not_done_again_on_resume(tmp_path: Path):
    # The runner rolled the failed canary back and died before recording its pause: the
    # resume found the step failed and rolled back a second time, an audited route change
    # of its own over whatever the route went through in between.
    service = Served(lambda _: (500, "down"))
    location = str(tmp_path / "runs.sqlite3")
    dying = DiesAt(location, "paused")
    try:
        run_id = started(tmp_path, UNHEALTHY_CANARY, service.url, dying)
        with pytest.raises(Died):
            Engine(dying, run_id, "tester").run()
        resumed = cli("resume", run_id, "--store", location, cwd=tmp_path)
    finally:
        dying.close()
        service.stop()
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    history = open_store(str(tmp_path / "routes.toml")).history(10)
    rollbacks = [v for v in history if "automatic rollback" in v.why]
    assert len(rollbacks) == 1, [(v.number, v.who, v.why) for v in history]
    assert float(history[0].table.route("products").weight) == 0
    report = json.loads(cli("status", run_id, "--store", location, "--json", cwd=tmp_path).stdout)
    assert report["state"] == "paused" and "rolled back to 0%" in report["reason"], report


class Meanwhile(RunStore):
    """A run store that does `then` right after recording `kind` of `step`: what a human
    does in the milliseconds between that record and the runner's next move, then."""

    def __init__(self, location: str, step: str, kind: str, then: Callable[[], None]) -> None:
        super().__init__(location)
        self.at, self.then = (step, kind), then

    def record(
        self, run_id: str, step: str, attempt: int, kind: str, *args: Any, **kw: Any
    ) -> None:
        super().record(run_id, step, attempt, kind, *args, **kw)
        if (step, kind) == self.at:
            self.then()


TO_10_THEN_50 = (
    TO_10
    + """
[[steps]]
id = "to-50"
action = "set_weight"
route = "products"
weight = 50
"""
)


def test_a_human_change_between_the_runners_check_and_its_flip_is_not_undone(tmp_path: Path):
    # Someone sets the route back to 0 (`strangler route weight`) just after the runner
    # checked the route and recorded action_started: its flip to 50% then read the newest
    # table and wrote over the human's rollback.
    routes = tmp_path / "routes.toml"
    human = ["route", "weight", "products", "0", "--config", str(routes), "--who", "oncall"]

    def roll_back_by_hand() -> None:
        done = subprocess.run(
            [sys.executable, "-m", "strangler", *human, "--why", "5xx on the service"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    location = str(tmp_path / "runs.sqlite3")
    flips = RunStore(location)
    try:
        run_id = started(tmp_path, TO_10_THEN_50, "http://127.0.0.1:2", flips)
    finally:
        flips.close()
    watched = Meanwhile(location, "to-50", "action_started", roll_back_by_hand)
    lines: list[str] = []
    try:
        finished = Engine(watched, run_id, "tester", lines.append).run()
    finally:
        watched.close()
    newest = open_store(str(routes)).history(1)[0]
    assert (float(newest.table.route("products").weight), newest.who) == (0, "oncall")
    assert finished.state == "paused", lines
    assert "was changed by version" in finished.reason and "oncall" in finished.reason, finished


HUNG_CDC = """
name = "hung-cdc"

[[steps]]
id = "lag"
action = "check"
gates = [{ gate = "cdc_lag", max_seconds = 5 }]
deadline = 3
interval = 0.5
"""


def test_a_source_that_hangs_is_cut_at_the_steps_deadline(tmp_path: Path):
    # The receiving project's `cdc status` hangs (its settings never finish importing): the
    # gate round waited for it up to 600 s, the step's 3 s deadline long past.
    (tmp_path / "hung_settings.py").write_text("import time\n\ntime.sleep(120)\n")
    env = Environment(
        routes=str(tmp_path / "routes.toml"),
        source_settings="hung_settings",
        target_settings="hung_settings",
        cwd=str(tmp_path),
    )
    finished, rounds, said = drive(HUNG_CDC, env, tmp_path)
    assert finished.state == "paused", said
    assert "deadline 3s reached" in finished.reason, finished.reason
    reason = rounds[-1][0]["reason"]
    assert rounds[-1][0]["outcome"] == "inconclusive" and "still running after" in reason
    assert int(reason.rsplit("still running after ", 1)[1].rstrip("s")) <= 3, reason


def test_a_manual_rollback_during_a_flip_in_flight_stands(tmp_path: Path):
    # `strangler runbook rollback` lands while the runner is between recording the flip to
    # 50% and writing it: the rollback sets the route to 10%, where it still is (nothing
    # for the flip's `seen` to conflict with), then the flip writes 50% over it. The run
    # said "rolled back by oncall to 10%" with half the users on the service.
    location = str(tmp_path / "runs.sqlite3")
    flips = RunStore(location)
    try:
        run_id = started(tmp_path, TO_10_THEN_50, "http://127.0.0.1:2", flips)
    finally:
        flips.close()
    rolled: list[subprocess.CompletedProcess[str]] = []
    rollback = ("rollback", run_id, "--store", location, "--who", "oncall", "--why", "p99 up")

    def roll_back_and_let_the_flip_go_on() -> None:
        threading.Thread(target=lambda: rolled.append(cli(*rollback, cwd=tmp_path))).start()
        paused = RunStore(location)
        try:
            while not rolled and paused.get(run_id).state != "paused":
                time.sleep(0.02)  # the rollback is set and the run paused: now the flip
        finally:
            paused.close()

    watched = Meanwhile(location, "to-50", "action_started", roll_back_and_let_the_flip_go_on)
    lines: list[str] = []
    try:
        finished = Engine(watched, run_id, "tester", lines.append).run()
    finally:
        watched.close()
    deadline = time.monotonic() + 60
    while not rolled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rolled and rolled[0].returncode == 0, rolled and rolled[0].stderr
    assert finished.state == "paused" and "rolled back by oncall" in finished.reason, lines
    history = open_store(str(tmp_path / "routes.toml")).history(3)
    assert [float(v.table.route("products").weight) for v in history] == [10, 50, 10], [
        (v.number, v.who, v.why) for v in history
    ]
    assert "landed after it" in history[0].why and history[0].who == f"runbook {run_id} (oncall)"


ROLLBACK_TO_A_LIST = """
name = "rollback-to-a-list"

[[steps]]
id = "canary-5"
action = "set_weight"
route = "products"
weight = 5

[[steps]]
id = "canary-50"
action = "set_weight"
route = "products"
weight = 50
gates = [{ gate = "service_healthy", route = "products" }]
on_fail = "rollback"
rollback_to = ["canary-5"]
"""


def test_a_rollback_to_that_is_not_a_step_id_is_refused_before_anything_moves(tmp_path: Path):
    # rollback_to written as a list passed validation (only a string was checked against
    # the earlier steps) and was stored as the text "['canary-5']": when canary-50 failed,
    # the automatic rollback looked that step up, died on a StopIteration traceback and left
    # half the users on the failing service, the run still saying "running".
    routes = tmp_path / "routes.toml"
    open_store(str(routes)).apply(table("http://127.0.0.1:1", "http://127.0.0.1:2"), "t", "seed")
    (tmp_path / "runbook.toml").write_text(ROLLBACK_TO_A_LIST)
    store = str(tmp_path / "runs.sqlite3")
    validated = cli("validate", "runbook.toml", cwd=tmp_path)
    ran = cli("run", "runbook.toml", "--routes", str(routes), "--store", store, "--detach",
              cwd=tmp_path)  # fmt: skip
    for result in (validated, ran):
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        line = ROLLBACK_TO_A_LIST.splitlines().index('rollback_to = ["canary-5"]') + 1
        assert f"runbook.E002 runbook.toml:{line}: step canary-50: 'rollback_to'" in result.stderr
    assert not Path(store).exists()
    assert float(open_store(str(routes)).current().table.route("products").weight) == 0


HEALTHY_CANARY = UNHEALTHY_CANARY.replace("interval = 0.2", "interval = 0.2\ndeadline = 2")


def test_a_route_table_file_broken_by_hand_mid_run_pauses_the_run_naming_it(tmp_path: Path):
    # Someone edits routes.toml by hand while the canary is watched and leaves a syntax
    # error (the proxies keep their last table). The runner's route check read it and died
    # on a ValidationFailed traceback: the run stayed "running" with nobody on it, its step
    # neither judged nor rolled back, and every resume died the same way.
    service = Served(lambda _: (200, "ok"))
    location = str(tmp_path / "runs.sqlite3")
    flips = RunStore(location)
    try:
        run_id = started(tmp_path, HEALTHY_CANARY, service.url, flips)
    finally:
        flips.close()
    routes = tmp_path / "routes.toml"
    watched = Meanwhile(
        location, "canary-10", "action_done", lambda: routes.write_text("weight = = 90\n")
    )
    lines: list[str] = []
    try:
        finished = Engine(watched, run_id, "tester", lines.append).run()
    finally:
        watched.close()
        service.stop()
    assert finished.state == "paused", lines
    assert f"route.E000 {routes}: syntax error" in finished.reason, finished.reason
    assert "AUTOMATIC ROLLBACK FAILED" in finished.reason, finished.reason
    newest = open_store(str(routes)).history(1)[0]  # nothing written over the broken file
    assert float(newest.table.route("products").weight) == 10, (newest.who, newest.why)


@pytest.mark.parametrize("lease", ["nan", "inf", "-5", "0.5"])
def test_a_lease_that_is_no_number_of_seconds_is_refused_by_run_and_resume(lease, tmp_path):
    # `run --lease-seconds nan` was taken (nan < 1 is false) and stored no expiry: after a
    # kill -9 the run was "being run by" the dead runner forever ("lease valid 0s more"),
    # so no resume ever took it. `resume` checked no lease at all: with -5 its lease had
    # expired as it was taken, and a second runner was let in at once.
    store = str(tmp_path / "runs.sqlite3")
    routes, run_id = detached(tmp_path, TO_10, store)
    started_run = cli("run", "runbook.toml", "--routes", str(routes), "--store", store,
                      "--detach", "--lease-seconds", lease, cwd=tmp_path)  # fmt: skip
    resumed = cli("resume", run_id, "--store", store, "--lease-seconds", lease, cwd=tmp_path)
    for result in (started_run, resumed):
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f"--lease-seconds: {lease} is not a number of seconds" in result.stderr
    runs_now = RunStore(store)
    try:
        assert [r.id for r in runs_now.runs()] == [run_id]  # `run` created none
        assert not runs_now.events(run_id, "step_started")  # `resume` ran nothing
    finally:
        runs_now.close()
    assert float(open_store(str(routes)).current().table.route("products").weight) == 0


def test_a_gate_reading_a_broken_route_table_says_so_without_an_exception_name(tmp_path: Path):
    # A gate that looks its route up in a table left with a syntax error was inconclusive
    # (right) with the reason "ValidationFailed: route.E000 ...": a Python class name where
    # the operator reads what to fix.
    routes = tmp_path / "routes.toml"
    routes.write_text("weight = = 90\n")
    gate = Gate("service_healthy", {"route": "products"})
    found = evaluate(gate, Environment(routes=str(routes)), Window({}))
    assert found.outcome == "inconclusive", found
    assert found.reason.startswith("the route table cannot be read: "), found.reason
    assert f"route.E000 {routes}: syntax error" in found.reason, found.reason
    assert "ValidationFailed" not in found.reason
