"""Start, run and stop proxy processes: listeners, admin API, store watcher, workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import uvloop

from strangler.control import open_store
from strangler.control.admin import AdminApi, Reply, json_reply, serve_admin
from strangler.control.watch import StoreWatcher
from strangler.proxy.health import start_due_probes
from strangler.proxy.metrics import ProxyMetrics, route_gauges
from strangler.proxy.mirror import Consumer
from strangler.proxy.processes import ProcessMetrics, reap_orphans, signal_on_parent_death
from strangler.proxy.server import ClientConnection
from strangler.proxy.shadow import MirrorProcess, Shadower
from strangler.proxy.state import ProxyState, open_access_log

log = logging.getLogger("strangler.proxy")


@dataclass(frozen=True)
class ProxyOptions:
    """Everything `strangler proxy` was asked to do."""

    store: str
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 8081
    workers: int = 1
    access_log: str = "-"
    admin_token: str = ""
    grace: float = 30.0
    poll_interval: float = 0.25
    metrics_dir: str = ""  # with several workers: where each leaves its numbers for worker 0
    # Builds, in the mirror process of each worker (called with the worker's index), what
    # receives the completed pairs (parity's comparisons or a Celery publisher); None turns
    # shadowing off whatever the table says. It must pickle (a module-level function or a
    # functools.partial of one): the mirror process is spawned.
    pair_consumer: Callable[[int], Consumer] | None = None
    supervisor_pid: int = 0  # with several workers: the pid the "listening" line names
    announce: bool = True  # print the "listening" line (a restarted worker does not)


RESTARTS_FILE = "supervisor.json"  # the supervisor's restart count, read by worker 0


async def _housekeeping(
    state: ProxyState, connections: set[ClientConnection], snapshot: Path | None
) -> None:
    """Time out slow backends (0.1 s resolution), flush the log, time out slow clients and
    idle connections (1 s), and (with several workers) leave a metrics snapshot every second."""
    tick = 0
    while True:
        await asyncio.sleep(0.1)
        now = time.monotonic()
        state.sweep_timeouts(now)
        start_due_probes(state, now)
        tick += 1
        if tick % 5 == 0 and state.access_log is not None:
            state.access_log.flush()
        if tick % 10 == 0 and snapshot is not None:
            state.breaker_snapshot()
            tmp = snapshot.with_suffix(".tmp")
            tmp.write_text(json.dumps(state.metrics.snapshot()))
            os.replace(tmp, snapshot)
        if tick % 10 == 0:
            for conn in list(connections):
                conn.sweep(now)


def _all_workers_metrics(state: ProxyState, metrics_dir: str, worker: int) -> ProxyMetrics:
    """This worker's live numbers plus the others' latest snapshots (at most ~1 s old)."""
    combined = ProxyMetrics()
    combined.absorb(state.metrics.snapshot())
    for path in sorted(Path(metrics_dir).glob("worker-*.json")):
        if path.name == f"worker-{worker}.json":
            continue  # its own, for a successor to go on from
        try:
            combined.absorb(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a worker that has not written yet, or is being replaced
    with contextlib.suppress(OSError, ValueError):
        combined.worker_restarts = json.loads((Path(metrics_dir) / RESTARTS_FILE).read_text())
    combined.store_healthy = state.metrics.store_healthy
    return combined


async def serve(options: ProxyOptions, worker: int = 0, reuse_port: bool = False) -> int:
    """One proxy process until SIGTERM/SIGINT, then a graceful drain.

    Exit code 0, or 1 when the grace period ran out with requests still in flight.
    """
    loop = asyncio.get_running_loop()
    store = open_store(options.store)
    watcher = StoreWatcher(store, options.poll_interval)
    version = watcher.load()
    state = ProxyState(version, open_access_log(options.access_log))
    if options.pair_consumer is not None:
        mirror = MirrorProcess(options.pair_consumer, worker, state.metrics)
        await mirror.start()
        state.shadow = Shadower(state.metrics, mirror)
    connections: set[ClientConnection] = set()
    server = await loop.create_server(
        lambda: ClientConnection(state, connections),
        options.host,
        options.port,
        reuse_port=reuse_port,
        backlog=4096,
    )
    admin = None
    if options.admin_port is not None and worker == 0:
        process = ProcessMetrics(options.supervisor_pid or os.getpid())

        def metrics() -> Reply:
            state.breaker_snapshot()
            state.metrics.store_healthy = 0 if watcher.problem else 1
            numbers = state.metrics
            if options.metrics_dir:
                numbers = _all_workers_metrics(state, options.metrics_dir, worker)
            text = numbers.render() + route_gauges(state.compiled.table) + process.render()
            return Reply(200, text.encode(), "text/plain; version=0.0.4")

        def healthz() -> Reply:
            """200 either way (the last good table keeps serving); the body says degraded."""
            health = {"status": "ok", "version": state.compiled.version}
            if watcher.problem:
                health.update(status="degraded", problem=watcher.problem)
            return json_reply(200, health)

        api = AdminApi(store, options.admin_token, {"/metrics": metrics, "/healthz": healthz})
        admin = await serve_admin(
            api, options.admin_host, options.admin_port, reuse_port=reuse_port
        )
    watcher.start(
        lambda v: loop.call_soon_threadsafe(state.swap, v),
        lambda _messages: loop.call_soon_threadsafe(state.count_rejection),
    )
    snapshot = None
    if options.metrics_dir:
        snapshot = Path(options.metrics_dir) / f"worker-{worker}.json"
        # Started again: the counters go on from the dead one's last snapshot (at most ~1 s
        # old), never down, which Prometheus would read as a reset of the summed series.
        with contextlib.suppress(OSError, ValueError, KeyError):
            state.metrics.absorb_counts(json.loads(snapshot.read_text()))
    chores = loop.create_task(_housekeeping(state, connections, snapshot))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if worker == 0 and options.announce:
        address = server.sockets[0].getsockname()
        ready = {
            "event": "listening",
            "proxy": f"{address[0]}:{address[1]}",
            "version": version.number,
            "workers": options.workers,
            "pid": options.supervisor_pid or os.getpid(),  # the one to signal
        }
        if admin is not None:
            a = admin.sockets[0].getsockname()
            ready["admin"] = f"{a[0]}:{a[1]}"
        print(json.dumps(ready), flush=True)
    await stop.wait()
    cut = await _drain(state, server, connections, options.grace)
    if state.shadow is not None:
        await state.shadow.close()
    chores.cancel()
    watcher.stop()
    if admin is not None:
        admin.close()
    if state.access_log is not None:
        state.access_log.flush()
    for pool in state.pools.values():
        pool.close()
    close = getattr(store, "close", None)
    if close is not None:
        close()
    return 1 if cut else 0


async def _drain(
    state: ProxyState, server: asyncio.Server, connections: set[ClientConnection], grace: float
) -> int:
    """Stop accepting, let in-flight requests finish (up to `grace` s), close keep-alives.

    Returns how many requests were still unanswered when the grace period ran out.
    """
    server.close()
    state.draining = True
    deadline = time.monotonic() + grace
    while connections and time.monotonic() < deadline:
        for conn in list(connections):
            conn.sweep(time.monotonic())
        await asyncio.sleep(0.05)
    cut = sum(len(conn.queue) for conn in connections)
    for conn in list(connections):
        conn.abort()
    if cut:
        log.error("grace period of %s s ran out: %d requests in flight were cut", grace, cut)
    log.info("proxy stopped")
    return cut


def _reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Bind (without listening) so every worker can bind the same port with SO_REUSEPORT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock, sock.getsockname()[1]


def run(options: ProxyOptions) -> int:
    """Run one process, or supervise `workers` processes sharing the port via SO_REUSEPORT."""
    if options.workers <= 1:
        return uvloop.run(serve(options))
    listener, port = _reserve_port(options.host, options.port)
    reserved = [listener]
    # The admin port too: a worker 0 started again serves /metrics where its predecessor did,
    # not on another ephemeral port nobody was told of (with `--admin HOST:0`).
    admin_port = options.admin_port
    if admin_port is not None:
        admin, admin_port = _reserve_port(options.admin_host, admin_port)
        reserved.append(admin)
    metrics_dir = tempfile.mkdtemp(prefix="strangler-metrics-")
    opts = replace(
        options,
        port=port,
        admin_port=admin_port,
        metrics_dir=metrics_dir,
        supervisor_pid=os.getpid(),
    )
    try:
        return _supervise(opts, reserved)
    finally:
        for sock in reserved:
            sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        sys.stdout.flush()


def _drain_when_orphaned(supervisor: int) -> None:
    """Have the kernel send this worker SIGTERM when its supervisor dies (even by kill -9),
    so no orphaned worker keeps serving a port nobody supervises (Linux prctl)."""
    signal_on_parent_death(signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _spawn(options: ProxyOptions, index: int, reserved: list[socket.socket]) -> int:
    """Fork worker `index`; returns its pid in the supervisor."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):  # the loop installs its own handlers
            signal.signal(sig, signal.SIG_DFL)
        _drain_when_orphaned(options.supervisor_pid)
        for sock in reserved:
            sock.close()
        code = uvloop.run(serve(options, worker=index, reuse_port=True))
    finally:
        sys.stdout.flush()
        os._exit(code)


def _supervise(options: ProxyOptions, reserved: list[socket.socket]) -> int:
    """Start the workers, start again any that dies, and on SIGTERM/SIGINT stop them all.

    Exit code: 0, or the first non-zero one a worker stopped with during shutdown.
    """
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, started at)
    reap_orphans()
    for index in range(options.workers):
        children[_spawn(options, index, reserved)] = (index, time.monotonic())
    quiet = replace(options, announce=False)
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status, restarts = 0, 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue  # a dead worker's mirror, reaped here: its CPU stays in process_*
        index, started = children.pop(pid)
        exit_code = os.waitstatus_to_exitcode(code)
        if stopping:
            status = status or (exit_code if exit_code > 0 else 0)
            continue
        if time.monotonic() - started < 1.0:
            time.sleep(1.0)  # one that dies at once is not restarted in a tight loop
        if stopping:
            continue
        new_pid = _spawn(quiet, index, reserved)
        children[new_pid] = (index, time.monotonic())
        if stopping:  # the signal came while forking: this one was not told
            os.kill(new_pid, signal.SIGTERM)
        restarts += 1
        print(
            json.dumps(
                {
                    "event": "worker_restarted",
                    "worker": index,
                    "pid": pid,
                    "exit": exit_code,
                    "new_pid": new_pid,
                }
            ),
            file=sys.stderr,
            flush=True,
        )
        (Path(options.metrics_dir) / RESTARTS_FILE).write_text(str(restarts))
    return status
