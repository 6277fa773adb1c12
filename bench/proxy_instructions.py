"""User-space instructions per proxied request, counted by callgrind (other load cannot move it).

Starts the bench's nginx upstreams and `strangler proxy` (90/10 sticky on X-User-ID) under
`valgrind --tool=callgrind`, zeroes the counters after a warm-up, drives it with wrk -c8 for
`--duration` seconds, dumps the counters and divides instructions by requests. The peer is
the same figure for the code of another git revision (`--peer main`), measured in the same run;
the last line is one JSON object.

    .venv/bin/python bench/proxy_instructions.py [--duration 4] [--repeats 3] [--peer main]

Needs valgrind, nginx and wrk (`apt-get install -y valgrind nginx wrk`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy import WRK_SCRIPT, proxy_argv, route_table, start_upstreams, stop, wrk

ROOT = Path(__file__).resolve().parents[1]


def routes(work: Path, port_a: int, port_b: int, shadow: float) -> Path:
    """The bench's table: /api/v1/products at 10% to catalog, sticky on X-User-ID, with
    `shadow` percent of its requests shadowed to catalog (as bench/parity.py does)."""
    table = route_table(port_a, port_b)
    if shadow:
        table["routes"][0]["shadow"] = {"percent": shadow}
    path = work / "routes.json"
    path.write_text(json.dumps(table))
    return path


def count(
    source: Path, table: Path, work: Path, duration: float, script: Path, shadow: float
) -> float:
    """Instructions per request of the proxy whose code is in `source` (`--parity-store` only
    when shadowing: revisions older than the parity package have no such option)."""
    out = work / f"callgrind.{source.name}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *proxy_argv(table)]
    if shadow:
        argv += ["--parity-store", str(work / f"parity.{source.name}.sqlite3")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=source)
    try:
        assert proc.stdout is not None
        port = int(json.loads(proc.stdout.readline())["proxy"].rsplit(":", 1)[1])
        wrk(port, 8, 2, script)  # warm pools and caches
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        requests = wrk(port, 8, duration, script)["requests"]
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        time.sleep(0.5)
        dumps = sorted(work.glob(f"{out.name}.*"), key=lambda p: p.stat().st_mtime)
        totals = [
            line for line in dumps[-1].read_text().splitlines() if line.startswith("summary:")
        ]
        for dump in dumps:
            dump.unlink()
        return int(totals[0].split()[1]) / requests
    finally:
        stop(proc, nginx=False)


def checkout(revision: str, work: Path) -> Path:
    """The tree of `revision` exported into `work` (read-only use; no worktree is created)."""
    target = work / f"rev-{revision.replace('/', '-')}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of wrk -c8 load")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--peer",
        default="main",
        help="git revision to compare against (its code must run in this venv)",
    )
    parser.add_argument(
        "--shadow",
        type=float,
        default=0.0,
        help="percent of the route's requests shadowed (compared by the local parity worker)",
    )
    args = parser.parse_args()
    missing = [tool for tool in ("valgrind", "nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)}: `apt-get install -y {' '.join(missing)}`")
        print(json.dumps({"error": f"missing {', '.join(missing)}"}))
        return 2
    with tempfile.TemporaryDirectory(prefix="strangler-callgrind-") as tmp:
        work = Path(tmp)
        script = work / "users.lua"
        script.write_text(WRK_SCRIPT)
        upstreams, port_a, port_b = start_upstreams(work)
        try:
            table = routes(work, port_a, port_b, args.shadow)
            peer = checkout(args.peer, work)
            figures: dict[str, list[float]] = {"ours": [], "peer": []}
            for _ in range(args.repeats):  # interleaved, so drift hits both alike
                figures["ours"].append(count(ROOT, table, work, args.duration, script, args.shadow))
                figures["peer"].append(count(peer, table, work, args.duration, script, args.shadow))
        finally:
            stop(upstreams, nginx=True)
    ours, theirs = (statistics.median(figures[k]) for k in ("ours", "peer"))
    print(f"instructions per request: ours {ours:,.0f}, {args.peer} {theirs:,.0f}")
    summary = {
        "instructions_per_request": round(ours),
        "peer": args.peer,
        "shadow_percent": args.shadow,
        "peer_instructions_per_request": round(theirs),
        "ratio_vs_peer": round(ours / theirs, 4),
        "runs": {k: [round(v) for v in vs] for k, vs in figures.items()},
    }
    from record import publish  # the last line, kept in bench/results/proxy_instructions.json

    publish("proxy_instructions", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
