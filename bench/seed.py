"""Benchmark the monolith's seed command on SQLite and PostgreSQL, next to Django's loaddata.

    .venv/bin/python bench/seed.py [--scale 2]

For each backend: a fresh database, `migrate` (not timed), then
  seed      `python -m monolith.manage seed --scale S` (bulk inserts, one transaction)
  loaddata  the peer: Django's `loaddata` of exactly the rows seed wrote (dumped once with
            `dumpdata`), into another fresh database of the same backend.
Each figure is the command's whole process (interpreter and Django start included).
PostgreSQL is the machine's (127.0.0.1:5432, databases strangler_monolith_bench_*).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

PG = "postgres://postgres@127.0.0.1:5432/"
APPS = ["auth.user", "catalog", "customers", "inventory", "shipping", "promotions", "orders",
        "payments", "reviews"]  # fmt: skip


def manage(database_url: str, var: Path, *args: str) -> float:
    """Run one management command; return its wall time in seconds."""
    env = {**os.environ, "DATABASE_URL": database_url, "MONOLITH_VAR_DIR": str(var),
           "CELERY_TASK_ALWAYS_EAGER": "1"}  # fmt: skip
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monolith.manage", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def recreate_pg(name: str, create: bool = True) -> None:
    with psycopg.connect(PG + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def fresh(backend: str, name: str, var: Path) -> str:
    """URL of an empty, migrated database called `name` on `backend`."""
    if backend == "sqlite":
        url = f"sqlite:///{var / name}.sqlite3"
    else:
        recreate_pg(name)
        url = PG + name
    manage(url, var, "migrate", "--noinput")
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="2", help="seed scale (1 = 1,000 orders)")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        dump = var / "dump.json"
        for backend in ("sqlite", "postgresql"):
            seeded = fresh(backend, "strangler_monolith_bench_seed", var)
            seed_s = manage(seeded, var, "seed", "--scale", args.scale)
            if not dump.exists():
                manage(seeded, var, "dumpdata", *APPS, "--output", str(dump))
            loaded = fresh(backend, "strangler_monolith_bench_load", var)
            load_s = manage(loaded, var, "loaddata", str(dump))
            results[backend] = {"seed_s": round(seed_s, 2), "loaddata_s": round(load_s, 2),
                                "loaddata_over_seed": round(load_s / seed_s, 1)}  # fmt: skip
            print(f"{backend:10}  seed {seed_s:6.2f}s   loaddata {load_s:6.2f}s   "
                  f"seed is {load_s / seed_s:.1f}x faster")  # fmt: skip
        objects = len(json.loads(dump.read_text()))
    for name in ("strangler_monolith_bench_seed", "strangler_monolith_bench_load"):
        recreate_pg(name, create=False)
    orders = int(float(args.scale) * 1000)
    print(f"{orders} orders, {objects} rows in all")
    from record import publish  # the last line, kept in bench/results/seed.json

    publish("seed", {"scale": float(args.scale), "orders": orders, "rows": objects, **results})


if __name__ == "__main__":
    main()
