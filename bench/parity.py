"""Benchmark parity comparisons: ~1 KB JSON pairs parsed, normalized, diffed and counted.

Compares `strangler.parity` against DeepDiff on the same pairs in the same run, and shows the
parse floor of the standard json module and of orjson (the parser was picked by this).
One process, no I/O. The last line is one JSON object (`pairs_per_s`, `ratio_vs_deepdiff`).

    .venv/bin/python bench/parity.py [--pairs 5000] [--repeats 3]

The peer is a dev-only install: `.venv/bin/pip install deepdiff`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from strangler.control.compare import CompareConfig
from strangler.parity.compare import Comparer
from strangler.parity.exchange import Exchange, Reply

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
    """Median pairs per second over `repeats` runs."""
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        results.append(count / (time.perf_counter() - start))
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
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

    figures = {
        "pairs_per_s": round(rate(ours, len(pairs), args.repeats)),
        "deepdiff_pairs_per_s": round(rate(deepdiff, len(pairs) // 10, args.repeats)),
        "json_parse_pairs_per_s": round(rate(parse_json, len(pairs), args.repeats)),
        "orjson_parse_pairs_per_s": round(rate(parse_orjson, len(pairs), args.repeats)),
    }
    figures["ratio_vs_deepdiff"] = round(
        figures["pairs_per_s"] / figures["deepdiff_pairs_per_s"], 1
    )
    print(f"{len(pairs)} pairs of {size:.0f} bytes each, median of {args.repeats} runs")
    for name in ("pairs_per_s", "deepdiff_pairs_per_s", "json_parse_pairs_per_s",
                 "orjson_parse_pairs_per_s"):  # fmt: skip
        print(f"  {name:28} {figures[name]:>10,}")
    print(f"  ratio vs DeepDiff             {figures['ratio_vs_deepdiff']:>10}x")
    from record import publish  # the last line, kept in bench/results/parity.json

    publish("parity", figures)


if __name__ == "__main__":
    main()
