"""Benchmark parity: comparison throughput, and the proxy's throughput while it shadows.

1. ~1 KB JSON pairs parsed, normalized, diffed and counted by `strangler.parity`, against
   DeepDiff on the same pairs in the same run, with the parse floor of the standard json
   module and of orjson (the parser was picked by this). One process, no I/O.
2. `strangler proxy` with 10% of requests shadowed (candidate plus the noise sample's second
   monolith call, made by the worker's mirror process and compared there into SQLite)
   against the same proxy with shadowing off, in the same run and the same setup as
   bench/proxy.py (nginx upstreams, wrk -c32, 1,000 users); and the same shadowing with the
   pairs discarded once the mirror made the calls (`shadow_proxy_only_ratio`: as when Celery
   workers on other machines compare).

The last line is one JSON object (`pairs_per_s`, `ratio_vs_deepdiff`,
`shadow_throughput_ratio`).

    .venv/bin/python bench/parity.py [--pairs 5000] [--repeats 3] [--duration 5] [--no-proxy]

The peer is a dev-only install: `.venv/bin/pip install deepdiff`. Part 2 needs nginx and wrk
(`apt-get install -y nginx wrk`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from strangler.control.compare import CompareConfig
from strangler.parity.compare import Comparer
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.store import ParityStore
from strangler.parity.summary import summary

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy as setup  # bench/proxy.py: the same upstreams, table, load and measurement

ROOT = Path(__file__).resolve().parents[1]
JSON = (("content-type", "application/json"),)


def product(i: int, rng: random.Random) -> dict:
    return {
        "id": i,
        "sku": f"SKU-{i:05d}",
        "name": f"Product {i}",
        "price": f"{rng.randint(100, 9999) / 100:.2f}",
        "currency": "EUR",
        "is_active": True,
        "category": rng.randint(1, 20),
        "updated_at": f"2026-01-0{rng.randint(1, 9)}T10:00:{rng.randint(10, 59)}.{i:06d}Z",
    }


def make_pairs(count: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """Pages of 6 products (~1 KB); updated_at always differs, a price in 30% of pairs."""
    rng = random.Random(seed)
    pairs = []
    for n in range(count):
        items = [product(n * 6 + k, rng) for k in range(6)]
        page = {"count": 5000, "next": f"/p?page={n + 2}", "previous": None, "results": items}
        other = json.loads(json.dumps(page))
        for item in other["results"]:
            item["updated_at"] = item["updated_at"].replace("10:00", "10:01")
        if rng.random() < 0.3:
            other["results"][rng.randrange(6)]["price"] = "0.01"
        pairs.append((orjson.dumps(page), orjson.dumps(other)))
    return pairs


def rate(run: Callable[[], object], count: int, repeats: int) -> float:
    """Median pairs per CPU second of this process over `repeats` runs.

    CPU time, not wall time: on a machine other work shares, wall time measures the others.
    """
    results = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        results.append(count / max(time.process_time() - start, 1e-9))
    return statistics.median(results)


def discarding(worker: int) -> Callable[[list[dict]], None]:
    """A pair consumer that drops every batch (pickled by name into the mirror process)."""
    return lambda batch: None


# The proxy with its pairs discarded once the mirror process made the shadow calls: what
# shadowing costs when the comparisons run elsewhere (Celery workers on other machines).
DISCARDING_PROXY = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from parity import discarding
from strangler.proxy.runner import ProxyOptions, run
run(ProxyOptions(store=sys.argv[1], port=0, admin_port=None, access_log="off",
                 pair_consumer=discarding))
"""


def start_proxy(
    work: Path, port_a: int, port_b: int, shadow: float, discard: bool = False
) -> tuple[Any, int]:
    """`strangler proxy` as bench/proxy.py runs it, with `shadow` percent shadowed."""
    table = setup.route_table(port_a, port_b)
    if shadow:
        table["routes"][0]["shadow"] = {"percent": shadow}
    config = work / f"routes-{shadow}-{discard}.json"
    config.write_text(json.dumps(table))
    argv = [*setup.proxy_argv(config), "--parity-store", str(work / f"parity-{shadow}.sqlite3")]
    if discard:
        argv = [sys.executable, "-c", DISCARDING_PROXY, str(config)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    return proc, int(ready["proxy"].rsplit(":", 1)[1])


def proxy_figures(duration: float, repeats: int) -> dict[str, Any]:
    """req/s and CPU per request of the proxy with shadowing off and at 10%, same run."""
    started: list[tuple[Any, bool]] = []
    with tempfile.TemporaryDirectory(prefix="strangler-bench-parity-") as tmp:
        work = Path(tmp)
        script = work / "users.lua"
        script.write_text(setup.WRK_SCRIPT)
        try:
            upstreams, port_a, port_b = setup.start_upstreams(work)
            started.append((upstreams, True))
            targets = {}
            for name, share, discard in (
                ("off", 0.0, False),
                ("shadow_10", 10.0, False),
                ("shadow_10_discard", 10.0, True),
            ):
                proc, port = start_proxy(work, port_a, port_b, share, discard)
                started.append((proc, False))
                targets[name] = (port, [proc.pid])
            for port, _ in targets.values():
                setup.wrk(port, 32, 1, script)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            nginx = setup.process_tree(upstreams.pid)  # one worker serves monolith and candidate
            for _ in range(repeats):  # interleaved, so load from other work hits both alike
                for name, (port, pids) in targets.items():
                    # What shares the 2 cores with the proxy: the upstream nginx (its shadow
                    # calls too) and the proxy's children (its mirror process).
                    others = {"upstream": nginx, "children": setup.process_tree(pids[0])[1:]}
                    before = {k: setup.cpu_seconds(v) for k, v in others.items()}
                    run = setup.measure(port, pids, 32, duration, 1, script)
                    for key, group in others.items():
                        used = setup.cpu_seconds(group) - before[key]
                        run[f"{key}_cpu_us_per_request"] = used / run["requests"] * 1e6
                    runs[name].append(run)
            results = {
                name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                for name, rs in runs.items()
            }
            store = ParityStore(str(work / "parity-10.0.sqlite3"))
            compared = summary(store, "products", since=0).samples
            store.close()
        finally:
            for proc, is_nginx in reversed(started):
                setup.stop(proc, is_nginx)
    print(f"proxy at wrk -c32, {duration:.0f} s x {repeats} (median):")
    for name, r in results.items():
        print(f"  {name:10} {r['rps']:>10,.0f} req/s  {r['cpu_us_per_request']:>6.1f} us CPU/req"
              f"  (nginx {r['upstream_cpu_us_per_request']:.1f}, mirror "
              f"{r['children_cpu_us_per_request']:.1f})"
              f"  p99 {r['p99_ms']:.2f} ms  non-2xx {r['errors']:.0f}")  # fmt: skip
    print(f"  pairs compared into the store while shadowing: {compared:,}")
    cpu = {n: r["cpu_us_per_request"] for n, r in results.items()}
    return {
        "shadow_throughput_ratio": round(results["shadow_10"]["rps"] / results["off"]["rps"], 3),
        "shadow_cpu_ratio": round(cpu["off"] / cpu["shadow_10"], 3),
        "shadow_proxy_only_ratio": round(
            results["shadow_10_discard"]["rps"] / results["off"]["rps"], 3
        ),
        "proxy_rps": {n: round(r["rps"]) for n, r in results.items()},
        "proxy_cpu_us_per_request": {n: r["cpu_us_per_request"] for n, r in results.items()},
        "neighbour_cpu_us_per_request": {
            n: {k: round(r[f"{k}_cpu_us_per_request"], 1) for k in ("upstream", "children")}
            for n, r in results.items()
        },
        "shadow_pairs_compared": compared,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--no-proxy", action="store_true", help="comparisons only")
    args = parser.parse_args()
    try:
        from deepdiff import DeepDiff
    except ImportError:
        sys.exit("bench/parity.py needs the peer: .venv/bin/pip install deepdiff")
    pairs = make_pairs(args.pairs)
    size = statistics.mean(len(a) for a, _ in pairs)
    comparer = Comparer({"products": CompareConfig()})

    def ours() -> None:
        fields: Counter[str] = Counter()
        for a, b in pairs:
            exchange = Exchange("products", "GET", "/api/v1/products", Reply(200, JSON, a),
                                Reply(200, JSON, b))  # fmt: skip
            fields.update(comparer.compare(exchange).raw_fields)

    def deepdiff() -> None:
        fields: Counter[str] = Counter()
        for a, b in pairs[: len(pairs) // 10]:
            result = DeepDiff(json.loads(a), json.loads(b))
            fields.update(result.get("values_changed", {}).keys())

    def parse_json() -> None:
        for a, b in pairs:
            json.loads(a), json.loads(b)

    def parse_orjson() -> None:
        for a, b in pairs:
            orjson.loads(a), orjson.loads(b)

    figures: dict[str, float] = {
        "pairs_per_s": round(rate(ours, len(pairs), args.repeats)),
        "deepdiff_pairs_per_s": round(rate(deepdiff, len(pairs) // 10, args.repeats)),
        "json_parse_pairs_per_s": round(rate(parse_json, len(pairs), args.repeats)),
        "orjson_parse_pairs_per_s": round(rate(parse_orjson, len(pairs), args.repeats)),
    }
    figures["ratio_vs_deepdiff"] = round(
        figures["pairs_per_s"] / figures["deepdiff_pairs_per_s"], 1
    )
    print(f"{len(pairs)} pairs of {size:.0f} bytes each, per CPU second, "
          f"median of {args.repeats} runs")  # fmt: skip
    for name in ("pairs_per_s", "deepdiff_pairs_per_s", "json_parse_pairs_per_s",
                 "orjson_parse_pairs_per_s"):  # fmt: skip
        print(f"  {name:28} {figures[name]:>10,}")
    print(f"  ratio vs DeepDiff             {figures['ratio_vs_deepdiff']:>10}x")
    result: dict[str, Any] = dict(figures)
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if args.no_proxy or missing:
        if missing:
            print(
                f"proxy part skipped: needs {' and '.join(missing)} (apt-get install -y nginx wrk)"
            )
        result["shadow_throughput_ratio"] = None
    else:
        result.update(proxy_figures(args.duration, args.repeats))
    from record import machine, publish  # the last line, kept in bench/results/parity.json

    if result["shadow_throughput_ratio"] is None:  # a partial run never replaces a full one
        print(json.dumps({**result, "bench": "parity", "machine": machine()}, sort_keys=True))
    else:
        publish("parity", result)


if __name__ == "__main__":
    main()
