"""Run the whole analysis: walk, facts (cached, parallel), project, proposal, report.

The finished report is cached too, keyed by every file's content hash and the options, so a
run on an unchanged tree only walks, stats and loads (no parsing, no clustering).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .boundaries import Boundaries, Problem
from .collect import (
    CACHE_FORMAT,
    Collected,
    Progress,
    UnreadableFile,
    cache_path,
    code_version,
    collect,
    load_cache,
    save_cache,
)
from .walk import Walk, walk_project

if TYPE_CHECKING:  # imported where a report is built: a reused report never loads it
    from .pins import Pins
    from .project import Edge, Project, Weighted

REPORT_CODE = (
    "project",
    "report",
    "cluster",
    "metrics",
    "weights",
    "boundaries",
    "api",
    "omnipresent",
    "pins",
    "kernel",
    "findings",
    "unionfind",
)


class AnalyzeError(Exception):
    """The input cannot be analyzed; the message says what, where and what to do."""


class BoundariesError(AnalyzeError):
    """boundaries.toml does not fit the project: every problem found, with its line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        listed = "\n".join(f"  {p}" for p in problems)
        one = len(problems) == 1
        super().__init__(str(problems[0]) if one else f"{len(problems)} problems:\n{listed}")
        self.problems = problems


@dataclass(frozen=True)
class Options:
    path: str
    jobs: int = 1
    cache_dir: str | None = None
    include_tests: bool = False
    exclude: tuple[str, ...] = ()
    boundaries: Boundaries = field(default_factory=Boundaries)
    git_commits: int = 0
    timings: bool = False
    boundary_problems: tuple[Problem, ...] = ()  # found in the file, reported with the rest
    sweep: tuple[float, ...] = ()  # resolutions to compare in report["resolutions"]


@dataclass
class Outcome:
    report: dict
    seconds: float
    parsed: int
    cached: int
    reused_report: bool
    kept_partition: bool = False


def cochange_edges(root: str, module_of_path: dict[str, str], commits: int) -> tuple[Edge, ...]:
    """Module pairs changed together in the last ``commits`` commits (``git log``)."""
    from .project import Edge

    try:
        top = subprocess.run(
            ["git", "-C", root, "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        log = subprocess.run(
            [
                "git",
                "-C",
                root,
                "log",
                f"-n{commits}",
                "--no-merges",
                "--name-only",
                "--format=%x00",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        said = (
            (getattr(error, "stderr", None) or str(error)).strip().splitlines() or [repr(error)]
        )[0]
        raise AnalyzeError(
            f"--git: {root} is not inside a readable git repository "
            f"(git: {said}); drop --git or run it in a clone"
        ) from error
    prefix = os.path.relpath(os.path.abspath(root), top)
    pairs: Counter[tuple[str, str]] = Counter()
    for commit in log.split("\x00"):
        modules = set()
        for line in commit.split("\n"):
            line = line.strip()
            if not line:
                continue
            rel = os.path.relpath(line, prefix) if prefix != "." else line
            if rel in module_of_path:
                modules.add(module_of_path[rel])
        if 1 < len(modules) <= 30:  # huge commits (renames, formatting) say nothing
            ordered = sorted(modules)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    pairs[(a, b)] += 1
    path_of = {m: p for p, m in module_of_path.items()}
    return tuple(
        Edge(
            f"module:{a}",
            f"module:{b}",
            "cochange",
            path_of[a],
            1,
            f"{count} commits also changed {path_of[b]}",
            min(count, 5) / 5,
        )
        for (a, b), count in sorted(pairs.items())
        if count >= 2
    )


def _report_key(hashes: dict[str, str], options: Options, git_head: str) -> str:
    b = options.boundaries
    material = json.dumps(
        {
            "files": sorted(hashes.items()),
            "report": code_version(*REPORT_CODE),
            "boundaries": [
                repr(b.contexts),
                repr(b.together),
                repr(b.apart),
                b.target,
                b.resolution,
                b.seed,
                sorted(b.weights.items()),
                b.omnipresent_min_apps,
            ],
            "git": [options.git_commits, git_head],
            "sweep": list(options.sweep),
            "name": os.path.basename(os.path.abspath(options.path)),
        },
        sort_keys=True,
    )
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


def _git_head(root: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def analyze(options: Options, progress: Progress | None = None) -> Outcome:
    """Analyze the Django project at ``options.path`` and return the report (JSON contract)."""
    started = time.perf_counter()
    root = os.path.abspath(options.path)
    if not os.path.isdir(root):
        raise AnalyzeError(
            f"{options.path} is not a directory; give the root of a Django "
            "project (the folder holding manage.py or your apps)"
        )
    try:
        walk = walk_project(root, include_tests=options.include_tests, exclude=options.exclude)
    except UnreadableFile as error:
        raise AnalyzeError(str(error)) from error
    if not walk.files:
        raise AnalyzeError(f"{options.path} holds no Python files; is this the project root?")
    store_path = cache_path(options.cache_dir, root) if options.cache_dir else None
    cache = load_cache(store_path) if store_path else {}
    try:
        collected = collect(
            root,
            walk.files,
            jobs=options.jobs,
            cache=cache,
            progress=progress,
            while_waiting=_import_report_modules,
        )
    except UnreadableFile as error:
        raise AnalyzeError(str(error)) from error
    git_head = _git_head(root) if options.git_commits else ""
    key = _report_key(collected.hashes, options, git_head)
    cached_report: tuple[str, str] | None = cache.get("report")
    reused = cached_report is not None and cached_report[0] == key and not options.boundary_problems
    kept = reused
    if cached_report is not None and reused:
        report = json.loads(cached_report[1])
    else:
        previous = cache.get("partition")
        report = _build(root, options, walk, collected, cache)
        kept = previous is not None and cache.get("partition") is previous
        cache["report"] = (key, json.dumps(report, sort_keys=True))
    cache["format"] = CACHE_FORMAT
    if store_path and (collected.parsed or not reused):
        try:
            save_cache(store_path, cache)
        except OSError as error:
            raise AnalyzeError(
                f"cannot write the cache in {options.cache_dir}: "
                f"{error.strerror}; pass --cache-dir DIR or --no-cache"
            ) from error
    seconds = time.perf_counter() - started
    if options.timings:
        report["stats"]["seconds"] = round(seconds, 3)
    return Outcome(report, seconds, collected.parsed, collected.cached, reused, kept)


def _linked_only_aside(
    edges: list[Weighted], clustered: list[Weighted], aside: set[str]
) -> tuple[str, ...]:
    """Nodes whose every edge touches set-aside code (a helper only the kernel imports).

    Clustering sees none of their edges, yet they must be placed: a node in no context is
    not pinned by ``--lock``, and the locked tree, where kernel modules are pinned and
    clustered, then places it unpinned and fails its own ``--check``.
    """
    linked = {n for s, t, _, _ in clustered for n in (s, t)}
    return tuple(sorted({n for s, t, _, _ in edges for n in (s, t)} - aside - linked))


def _graph_key(
    edges: list[Weighted], options: Options, models: list[str], loose: tuple[str, ...]
) -> str:
    """Digest of exactly what clustering reads: weighted pairs, nodes and constraints."""
    digest = hashlib.blake2b(digest_size=16)
    b = options.boundaries
    digest.update(
        repr(
            (
                code_version(*REPORT_CODE),
                b.contexts,
                b.together,
                b.apart,
                b.target,
                b.resolution,
                b.seed,
                b.omnipresent_min_apps,
                models,
                loose,
            )
        ).encode()
    )
    for s, t, w, _ in edges:
        digest.update(f"{s}\0{t}\0{w!r}\n".encode())
    return digest.hexdigest()


def _import_report_modules() -> None:
    """Load what building a report needs (networkx most of all) while files are parsed."""
    import networkx  # noqa: F401

    from . import report  # noqa: F401


def _set_aside(
    project: Project, edges: list[Weighted], pins: Pins, boundaries: Boundaries
) -> tuple[frozenset[str], dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Project wiring, omnipresent units (-> the apps they use) and the shared kernel
    (-> the apps importing it), found before clustering; a pinned module is never kernel."""
    from .kernel import find_kernel, project_wiring
    from .omnipresent import find_omnipresent

    model_app = {f"model:{m.key}": m.app for m in project.models}
    wiring = project_wiring(project.settings_modules, project.module_app, model_app.values())
    definers = frozenset(f"module:{m.module}" for m in project.models)
    omnipresent = find_omnipresent(
        ((s, t, e.kind) for s, t, _, e in edges if s not in wiring),
        model_app,
        definers,
        boundaries.omnipresent_min_apps,
    )
    node_app = model_app | {f"module:{m}": app for m, app in project.module_app.items()}
    kernel = find_kernel(
        ((s, t, e.kind) for s, t, _, e in edges),
        node_app,
        definers,
        frozenset(omnipresent) | wiring,
    )
    return (
        wiring,
        omnipresent,
        {n: apps for n, apps in kernel.items() if pins.context_of(n) is None},
    )


def _build(root: str, options: Options, walk: Walk, collected: Collected, cache: dict) -> dict:
    from .kernel import KERNEL
    from .pins import Layout, resolve_pins
    from .project import resolve_project
    from .report import Placement, build_report, propose, resolution_row, weighted_edges

    project = resolve_project(collected.facts)
    if not project.models and not project.apps and not project.settings_modules:
        if project.parse_errors:  # the settings or models may be in a file that does not parse
            first, count = project.parse_errors[0], len(project.parse_errors)
            raise AnalyzeError(
                f"{options.path}: no models, AppConfig classes or INSTALLED_APPS found, but "
                + ("1 file does not parse: " if count == 1 else f"{count} files do not parse: ")
                + f"{first.file}:{first.line} ({first.message}); fix it, it may hold them"
            )
        raise AnalyzeError(
            f"{options.path} does not look like a Django project: no models, AppConfig classes "
            "or INSTALLED_APPS found in its Python files; point at the folder holding your apps"
        )
    app_models: dict[str, tuple[str, ...]] = {a.label: () for a in project.apps}
    for m in project.models:
        app_models[m.app] = (*app_models.get(m.app, ()), m.key)
    broken = tuple((n.file, n.line, n.message) for n in project.parse_errors)
    layout = Layout(app_models, project.module_app, broken)
    pins, problems = resolve_pins(options.boundaries, layout)
    if options.boundary_problems or problems:
        raise BoundariesError(options.boundaries.source, [*options.boundary_problems, *problems])
    extra: tuple[Edge, ...] = ()
    if options.git_commits:
        module_of_path = {f.path: f.module for f in collected.facts}
        extra = cochange_edges(root, module_of_path, options.git_commits)
    edges = weighted_edges(project, options.boundaries.weights, extra)
    wiring, omnipresent, kernel = _set_aside(project, edges, pins, options.boundaries)
    # Omnipresent units, wiring and the shared kernel are clustered without: they would pull
    # whichever context they land in. The kernel is a context of its own (the user's pins win).
    aside = set(omnipresent) | wiring | set(kernel)
    clustered = [e for e in edges if e[0] not in aside and e[1] not in aside]
    loose = _linked_only_aside(edges, clustered, aside)
    # An edit that leaves the graph as it was (a comment, a body, a moved line) keeps the
    # proposal: only evidence and stats are rebuilt, without clustering again.
    key = _graph_key(clustered, options, [m.key for m in project.models], loose)
    previous = cache.get("partition")
    if previous and previous[0] == key:
        parts = previous[1]
    else:
        b = options.boundaries
        if kernel and b.target:  # the kernel is one of the N contexts asked for
            b = replace(b, target=max(1, b.target - 1))
        parts = propose(project, clustered, pins, b, loose)
        parts.update({n: KERNEL for n in kernel})
        cache["partition"] = (key, parts)
    facts = collected.facts
    # Metrics on the graph the report measures: the kernel is in it, as a context of its own.
    measured = [
        e for e in edges if e[0] not in aside - set(kernel) and e[1] not in aside - set(kernel)
    ]
    resolutions = [
        resolution_row(
            project,
            measured,
            propose(
                project,
                clustered,
                pins,
                replace(options.boundaries, resolution=res, target=None),
                loose,
            )
            | {n: KERNEL for n in kernel},
            res,
        )
        for res in options.sweep
    ]
    stats = {
        "files": len(facts),
        "migrations": sum(1 for f in walk.files if f.is_migration),
        "lines": sum(f.lines for f in facts),
        "apps": len(project.apps),
        "models": len(project.models),
        "modules": sum(1 for n in parts if n.startswith("module:")) + len(aside) - len(kernel),
        "endpoints": len(project.endpoints),
        "tasks": len(project.tasks),
        "seconds": None,
        "parse_errors": [
            {"file": n.file, "line": n.line, "message": n.message} for n in project.parse_errors
        ],
        "unresolved": [
            {"file": n.file, "line": n.line, "message": n.message} for n in project.unresolved
        ],
        "skipped": [{"path": p, "reason": r} for p, r in walk.skipped],
    }
    b = options.boundaries
    opts = {
        "resolution": b.resolution,
        "seed": b.seed,
        "target_contexts": b.target,
        "weights": dict(sorted(b.weights.items())),
        "git_commits": options.git_commits,
        "include_tests": options.include_tests,
        "omnipresent_min_apps": b.omnipresent_min_apps,
    }
    placement = Placement(parts, omnipresent, wiring, kernel, pins)
    report = build_report(
        project, placement, edges, stats, opts, os.path.basename(root.rstrip(os.sep))
    )
    if resolutions:
        report["resolutions"] = resolutions
    return report
