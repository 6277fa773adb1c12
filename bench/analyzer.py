"""Benchmark `strangler analyze` on django-oscar against peers measured in the same run.

Every figure is a whole process (interpreter start included), the median of several runs:
  cold      strangler analyze --no-cache, N processes (also in CPU seconds, user + system)
  warm      strangler analyze with a primed cache, nothing changed
  changed   strangler analyze after one file changed: a comment (the proposal is kept),
            then a new dependency (re-clustered); peer: that file's parse + importing libcst
  libcst    parse-only pass over the same files with the same N processes
  ast       ast.parse over the same files, one process
  grimp     grimp.build_graph of the same package
Peak memory (max RSS, MB) is taken from separate runs of the cold and warm analysis.
Last line: one JSON object with the figures and ratios.

Run: .venv/bin/python bench/analyzer.py [--jobs N] [--repeat R]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.analyzer.projects import oscar_source  # noqa: E402

PARSE_ONLY = r"""
import sys
from concurrent.futures import ProcessPoolExecutor
from strangler_analyzer.walk import walk_project

def parse(path):
    import libcst
    with open(path, "rb") as handle:
        libcst.parse_module(handle.read())

root, jobs = sys.argv[1], int(sys.argv[2])
paths = [f"{root}/{f.path}" for f in walk_project(root).files if not f.is_migration]
if jobs > 1:
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(parse, paths, chunksize=max(1, len(paths) // (jobs * 8))))
else:
    list(map(parse, paths))
print(len(paths))
"""

AST_ONLY = r"""
import ast, sys
from strangler_analyzer.walk import walk_project
root = sys.argv[1]
for f in walk_project(root).files:
    if not f.is_migration:
        with open(f"{root}/{f.path}", "rb") as handle:
            ast.parse(handle.read())
"""

GRIMP = r"""
import sys
sys.path.insert(0, sys.argv[1])
import grimp
graph = grimp.build_graph("oscar", cache_dir=None)
print(len(graph.modules))
"""

MAXRSS = r"""
import resource, runpy, sys
sys.argv = ["strangler", *sys.argv[1:]]
try:
    runpy.run_module("strangler", run_name="__main__")
except SystemExit:
    pass
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"MAXRSS {own} {kids}", file=sys.stderr)
"""


def timed(command: list[str], repeat: int, before: Callable[[], None] | None = None) -> float:
    runs = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and their children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def interleaved(commands: list[list[str]], repeat: int) -> tuple[list[float], list[float]]:
    """Median wall seconds and median CPU seconds (user + system, worker processes included)
    of each command, running them in turn ``repeat`` times. CPU figures hold on a busy
    machine, where wall clock depends on what else runs."""
    runs: list[list[float]] = [[] for _ in commands]
    cpu: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for index, command in enumerate(commands):
            started, cpu_before = time.perf_counter(), children_cpu()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
            runs[index].append(time.perf_counter() - started)
            cpu[index].append(children_cpu() - cpu_before)
    return [statistics.median(r) for r in runs], [statistics.median(c) for c in cpu]


def peak_mb(args: list[str]) -> tuple[float, float]:
    result = subprocess.run(
        [sys.executable, "-c", MAXRSS, *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("MAXRSS"))
    own, kids = (int(v) / 1024 for v in line.split()[1:])
    return round(own, 1), round(kids, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source, why = oscar_source()
    if source is None:
        sys.exit(f"bench/analyzer.py: {why}")
    py = sys.executable
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "oscar"
        shutil.copytree(source, root)
        cache = Path(scratch) / "cache"
        analyze = [py, "-m", "strangler", "analyze", str(root), "--json", "-j", str(args.jobs)]
        files = int(
            subprocess.run(
                [py, "-c", PARSE_ONLY, str(root), "1"],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            ).stdout
        )
        lines = sum(
            len((root / p).read_text().splitlines())
            for p in (str(x.relative_to(root)) for x in root.rglob("*.py"))
            if "/migrations/" not in p
        )
        subprocess.run(
            [*analyze, "--cache-dir", str(cache)], check=True, stdout=subprocess.DEVNULL, cwd=REPO
        )
        # Interleaved, so that a busy machine slows each contender alike.
        (cold, parse_only, ast_s, grimp_s, warm), (cold_cpu, parse_cpu, *_) = interleaved(
            [
                [*analyze, "--no-cache"],
                [py, "-c", PARSE_ONLY, str(root), str(args.jobs)],
                [py, "-c", AST_ONLY, str(root)],
                [py, "-c", GRIMP, str(root)],
                [*analyze, "--cache-dir", str(cache)],
            ],
            args.repeat,
        )
        target = root / "oscar" / "apps" / "order" / "utils.py"
        original = target.read_text()
        counter = iter(range(10**6))

        def touch() -> None:
            target.write_text(original + f"\n# edit {next(counter)}\n")

        changed = timed([*analyze, "--cache-dir", str(cache)], args.repeat, before=touch)
        models = iter(["StockRecord", "Partner"] * args.repeat)

        def edit_graph() -> None:  # a new read of another model each time: re-cluster
            target.write_text(
                original + "\n\ndef _bench():\n    from oscar.apps.partner."
                f"models import {next(models)} as M\n    return M.objects.count()\n"
            )

        changed_graph = timed([*analyze, "--cache-dir", str(cache)], args.repeat, before=edit_graph)
        import libcst  # the peer for one changed file: parsing it, in this process

        data = target.read_bytes()
        parses = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            libcst.parse_module(data)
            parses.append(time.perf_counter() - started)
        one_parse = statistics.median(parses)
        libcst_import = timed([py, "-c", "import libcst"], args.repeat) - timed(
            [py, "-c", "pass"], args.repeat
        )
        cold_mem = peak_mb(["analyze", str(root), "--json", "--no-cache", "-j", str(args.jobs)])
        warm_mem = peak_mb(["analyze", str(root), "--json", "--cache-dir", str(cache)])
    figures = {
        "project": "django-oscar 4.2.1",
        "files": files,
        "lines": lines,
        "jobs": args.jobs,
        "cold_s": round(cold, 3),
        "warm_s": round(warm, 3),
        "one_changed_s": round(changed, 3),
        "libcst_parse_s": round(parse_only, 3),
        "ast_parse_s": round(ast_s, 3),
        "grimp_s": round(grimp_s, 3),
        "one_file_parse_s": round(one_parse, 3),
        "libcst_import_s": round(libcst_import, 3),
        "one_changed_graph_s": round(changed_graph, 3),
        "cold_peak_mb": cold_mem,
        "warm_peak_mb": warm_mem,
        "cold_vs_libcst": round(cold / parse_only, 2),
        "cold_cpu_s": round(cold_cpu, 3),
        "libcst_parse_cpu_s": round(parse_cpu, 3),
        "cold_cpu_vs_libcst": round(cold_cpu / parse_cpu, 2),
        "warm_vs_grimp": round(warm / grimp_s, 2),
        "changed_minus_warm_s": round(changed - warm, 3),
        "cold_vs_ast": round(cold / ast_s, 2),
    }
    print(
        f"django-oscar {figures['files']} files, {lines:,} lines (no migrations), "
        f"{args.jobs} processes, median of {args.repeat}, whole processes"
    )
    print(
        f"  cold analyze        {cold:7.3f} s   vs libcst parse-only {parse_only:.3f} s  "
        f"-> {figures['cold_vs_libcst']}x (target <= 1.5x)"
    )
    print(
        f"  ... in CPU seconds  {cold_cpu:7.3f} s   vs libcst parse-only {parse_cpu:.3f} s  "
        f"-> {figures['cold_cpu_vs_libcst']}x (user + system, all processes)"
    )
    print(
        f"  warm analyze        {warm:7.3f} s   vs grimp import graph {grimp_s:.3f} s  "
        f"-> {figures['warm_vs_grimp']}x (target <= 3x)"
    )
    print(
        f"  one file changed    {changed:7.3f} s   (+{changed - warm:.3f} s over warm; that "
        f"file's parse {one_parse:.3f} s + importing libcst {libcst_import:.3f} s)"
    )
    print(f"  ... and its graph   {changed_graph:7.3f} s   (a new dependency: re-clustered)")
    print(f"  ast.parse pass      {ast_s:7.3f} s")
    print(f"  peak RSS MB (main, largest child): cold {cold_mem}, warm {warm_mem}")
    from record import publish  # the last line, kept in bench/results/analyzer.json

    publish("analyzer", figures)


if __name__ == "__main__":
    main()
