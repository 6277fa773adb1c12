"""Benchmark the strangler proxy against nginx's split_clients, side by side, on this machine.

Starts two nginx upstreams answering a 1 KB JSON body, an nginx proxy splitting 90/10 with
split_clients, `strangler proxy` at 90/10 sticky on X-User-ID, and (for the record of why
the data plane is not ASGI) a minimal ASGI proxy under uvicorn with httpx's pooled client
at the same split; one worker each. Drives each with wrk (-c32 for throughput, -c4 for
added latency) and prints req/s, p50, p99, CPU per request and ratios. The last line is
one JSON object.

    .venv/bin/python bench/proxy.py [--duration 5] [--repeats 3]

Needs nginx and wrk: `apt-get install -y nginx wrk` (Debian/Ubuntu).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"items": [{"id": i, "name": f"product {i:04d}"} for i in range(40)]})[:1024]
CLK_TCK = os.sysconf("SC_CLK_TCK")
USERS = 1000  # distinct X-User-ID values the load cycles through

WRK_SCRIPT = f"""
local requests = {{}}
local n = 0
init = function(args)
  for i = 1, {USERS} do
    requests[i] = wrk.format("GET", "/api/v1/products/1", {{["X-User-ID"] = "user-" .. i}})
  end
end
request = function()
  n = n % {USERS} + 1
  return requests[n]
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def nginx_conf(work: Path, name: str, servers: str) -> Path:
    conf = work / f"{name}.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {work}/{name}.pid;
error_log {work}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/{name}_body;
  proxy_temp_path {work}/{name}_proxy;
  fastcgi_temp_path {work}/{name}_fcgi;
  uwsgi_temp_path {work}/{name}_uwsgi;
  scgi_temp_path {work}/{name}_scgi;
  keepalive_requests 1000000;
  {servers}
}}
""")
    return conf


def start_nginx(conf: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["nginx", "-p", str(conf.parent), "-c", str(conf)], stderr=subprocess.PIPE
    )
    wait_port(port)
    return proc


def process_tree(pid: int) -> list[int]:
    """pid and its children (nginx master + worker)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def parse_latency(text: str) -> float:
    """wrk's '812.00us', '1.45ms', '2.01s' or '1.02m' as milliseconds."""
    found = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, connections: int, duration: float, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/api/v1/products/1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    try:
        p50 = parse_latency(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = parse_latency(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError) as error:
        raise RuntimeError(f"cannot read wrk's output ({error}):\n{out}") from error
    return {
        "rps": rps,
        "requests": total,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": int(errors.group(1)) if errors else 0,
    }


def measure(
    port: int, pids: list[int], connections: int, duration: float, repeats: int, script: Path
) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        before = cpu_seconds(pids)
        result = wrk(port, connections, duration, script)
        used = cpu_seconds(pids) - before
        result["cpu_us_per_request"] = used / result["requests"] * 1e6 if pids else 0.0
        runs.append(result)
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


ASGI_APP = """
import os

import httpx

from strangler.control.routing import bucket

MONOLITH, CATALOG = os.environ["BENCH_MONOLITH"], os.environ["BENCH_CATALOG"]
HOP = {b"host", b"connection", b"content-length", b"transfer-encoding"}
clients = []


async def app(scope, receive, send):
    if not clients:
        clients.append(httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=64)))
    headers = dict(scope["headers"])
    key = headers.get(b"x-user-id", b"").decode()
    base = CATALOG if bucket("products", key) < 1000 else MONOLITH
    upstream = await clients[0].get(base + scope["path"], headers=[
        (k, v) for k, v in scope["headers"] if k not in HOP])
    out = [(k.encode(), v.encode()) for k, v in upstream.headers.items()
           if k.encode() not in HOP]
    out.append((b"content-length", str(len(upstream.content)).encode()))
    await send({"type": "http.response.start", "status": upstream.status_code, "headers": out})
    await send({"type": "http.response.body", "body": upstream.content})
"""


def start_upstreams(work: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    """One nginx (one worker) serving the 1 KB body on two ports: monolith and catalog."""
    port_a, port_b = free_port(), free_port()
    body = BODY.replace("'", "")
    servers = "\n".join(
        f"server {{ listen 127.0.0.1:{p}; location / {{ default_type application/json; "
        f"return 200 '{body}'; }} }}"
        for p in (port_a, port_b)
    )
    return start_nginx(nginx_conf(work, "upstreams", servers), port_a), port_a, port_b


def start_nginx_split(work: Path, port_a: int, port_b: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    split = f"""
  upstream monolith {{ server 127.0.0.1:{port_a}; keepalive 64; }}
  upstream catalog {{ server 127.0.0.1:{port_b}; keepalive 64; }}
  split_clients "${{http_x_user_id}}" $backend {{ 10% catalog; * monolith; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://$backend; proxy_http_version 1.1;
                  proxy_set_header Connection ""; }} }}"""
    return start_nginx(nginx_conf(work, "split", split), port), port


def route_table(port_a: int, port_b: int) -> dict[str, Any]:
    """The bench's table: /api/v1/products at 10% to catalog, sticky on X-User-ID."""
    return {
        "default_backend": "monolith",
        "backends": {
            "monolith": {"url": f"http://127.0.0.1:{port_a}"},
            "catalog": {"url": f"http://127.0.0.1:{port_b}"},
        },
        "routes": [
            {
                "id": "products",
                "prefix": "/api/v1/products",
                "monolith": "monolith",
                "service": "catalog",
                "weight": 10,
                "sticky": ["header:X-User-ID"],
            }
        ],
    }


def proxy_argv(config: Path) -> list[str]:
    """`strangler proxy` on the table in `config`: a free port, no admin API, no access log
    (what every bench that runs our proxy starts)."""
    return [sys.executable, "-m", "strangler", "proxy", "--config", str(config),
            "--listen", "127.0.0.1:0", "--admin", "off", "--access-log", "off"]  # fmt: skip


def start_ours(work: Path, port_a: int, port_b: int) -> tuple[subprocess.Popen[bytes], int]:
    table = route_table(port_a, port_b)
    (work / "routes.json").write_text(json.dumps(table))
    argv = proxy_argv(work / "routes.json")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    return proc, int(ready["proxy"].rsplit(":", 1)[1])


def start_asgi(work: Path, port_a: int, port_b: int) -> tuple[subprocess.Popen[bytes], int]:
    (work / "asgi_proxy.py").write_text(ASGI_APP)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "asgi_proxy:app",
        "--app-dir",
        str(work),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]
    env = {
        **os.environ,
        "BENCH_MONOLITH": f"http://127.0.0.1:{port_a}",
        "BENCH_CATALOG": f"http://127.0.0.1:{port_b}",
    }
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def stop(proc: subprocess.Popen[bytes], nginx: bool) -> None:
    proc.send_signal(signal.SIGQUIT if nginx else signal.SIGTERM)  # both: graceful
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_all(args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    """Start everything, measure each target at c32 and c4, stop everything."""
    started: list[tuple[subprocess.Popen[bytes], bool]] = []
    with tempfile.TemporaryDirectory(prefix="strangler-bench-") as tmp:
        work = Path(tmp)
        script = work / "users.lua"
        script.write_text(WRK_SCRIPT)
        try:
            upstreams, port_a, port_b = start_upstreams(work)
            started.append((upstreams, True))
            nginx, port_nginx = start_nginx_split(work, port_a, port_b)
            started.append((nginx, True))
            ours, port_ours = start_ours(work, port_a, port_b)
            started.append((ours, False))
            targets = {
                "direct": (port_a, []),
                "nginx": (port_nginx, process_tree(nginx.pid)),
                "ours": (port_ours, [ours.pid]),
            }
            if not args.no_asgi:
                asgi, port_asgi = start_asgi(work, port_a, port_b)
                started.append((asgi, False))
                targets["asgi"] = (port_asgi, [asgi.pid])
            for port, _ in targets.values():  # warm pools and caches
                wrk(port, 32, 1, script)
            return {
                name: {
                    "c32": measure(port, pids, 32, args.duration, args.repeats, script),
                    "c4": measure(port, pids, 4, args.duration, args.repeats, script),
                }
                for name, (port, pids) in targets.items()
            }
        finally:
            for proc, is_nginx in reversed(started):
                stop(proc, is_nginx)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--no-asgi", action="store_true", help="skip the ASGI + httpx peer")
    args = parser.parse_args()
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        print(
            f"bench/proxy.py needs {' and '.join(missing)} on PATH: install with "
            f"`apt-get install -y {' '.join(missing)}` (Debian/Ubuntu) and run again."
        )
        print(json.dumps({"error": f"missing {', '.join(missing)}"}))
        return 2
    results = run_all(args)
    print(
        f"{'target':8} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU us/req':>10} {'non-2xx':>7}"
    )
    for name, by_conns in results.items():
        for conns, r in by_conns.items():
            print(
                f"{name:8} {conns[1:]:>5} {r['rps']:>10.0f} {r['p50_ms']:>8.3f} "
                f"{r['p99_ms']:>8.3f} {r['cpu_us_per_request']:>10.1f} {r['errors']:>7.0f}"
            )
    direct_c4 = results["direct"]["c4"]["p50_ms"]
    nginx_c32 = results["nginx"]["c32"]
    summary: dict[str, object] = {
        "throughput_ratio_vs_nginx": round(results["ours"]["c32"]["rps"] / nginx_c32["rps"], 3),
        "added_p50_ms": round(results["ours"]["c4"]["p50_ms"] - direct_c4, 3),
        "nginx_added_p50_ms": round(results["nginx"]["c4"]["p50_ms"] - direct_c4, 3),
        "cpu_ratio_vs_nginx": round(
            results["ours"]["c32"]["cpu_us_per_request"]
            / max(nginx_c32["cpu_us_per_request"], 1e-9),
            2,
        ),
    }
    if "asgi" in results:
        summary["asgi_throughput_ratio_vs_nginx"] = round(
            results["asgi"]["c32"]["rps"] / nginx_c32["rps"], 3
        )
        summary["asgi_added_p50_ms"] = round(results["asgi"]["c4"]["p50_ms"] - direct_c4, 3)
    summary.update(
        rps={n: round(r["c32"]["rps"]) for n, r in results.items()},
        p50_ms_c32={n: r["c32"]["p50_ms"] for n, r in results.items()},
        p99_ms_c32={n: r["c32"]["p99_ms"] for n, r in results.items()},
        p50_ms_c4={n: r["c4"]["p50_ms"] for n, r in results.items()},
        cpu_us_per_request={
            n: round(r["c32"]["cpu_us_per_request"], 1) for n, r in results.items() if n != "direct"
        },
        duration_s=args.duration,
        repeats=args.repeats,
        cores=os.cpu_count(),
        load_average_after=round(os.getloadavg()[0], 2),
    )
    print(
        f"ours/nginx throughput: {summary['throughput_ratio_vs_nginx']:.2f} (target >= 0.30); "
        f"added p50 at 4 connections: ours {summary['added_p50_ms']:.3f} ms "
        f"(target < 1 ms), nginx {summary['nginx_added_p50_ms']:.3f} ms"
    )
    from record import publish  # the last line, kept in bench/results/proxy.json

    publish("proxy", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
