"""Extract facts from every file: from the cache when unchanged, else in parallel processes.

The cache is one file per project root holding, per path, the (mtime, size) seen last, the
content hash and the facts. A file whose mtime and size are unchanged is not even read; one
whose content hash is unchanged is not parsed. Why one file: a warm run must cost about as
much as starting Python, and opening hundreds of small files does not.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .facts import FACTS_VERSION, FileFacts
from .walk import SourceFile, UnreadableFile


def code_version(*modules: str) -> str:
    """A digest of the analyzer's own source files, so a changed analyzer never reuses stale
    cache entries (no version number to forget to bump)."""
    digest = hashlib.blake2b(str(FACTS_VERSION).encode(), digest_size=8)
    here = os.path.dirname(os.path.abspath(__file__))
    for name in modules:
        with open(os.path.join(here, f"{name}.py"), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


CACHE_FORMAT = f"strangler-analyze-{code_version('facts', 'extract', 'codegen', 'walk', 'collect')}"
Progress = Callable[[int, int], None]


@dataclass
class Collected:
    facts: list[FileFacts]
    hashes: dict[str, str]
    parsed: int
    cached: int


def default_cache_dir() -> str:
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("strangler"), "analyze")


def cache_path(cache_dir: str, root: str) -> str:
    key = hashlib.blake2b(os.path.abspath(root).encode(), digest_size=12).hexdigest()
    return os.path.join(cache_dir, f"{key}.pickle")


def load_cache(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else {}


def save_cache(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, path)


def _extract(task: tuple[SourceFile, bytes]) -> FileFacts:
    from .extract import extract_migration, extract_source

    source, data = task
    if source.is_migration:
        return extract_migration(source.path, source.module, data)
    return extract_source(source.path, source.module, source.is_package, data)


def _read(root: str, source: SourceFile) -> bytes:
    try:
        with open(os.path.join(root, source.path), "rb") as handle:
            return handle.read()
    except OSError as error:
        raise UnreadableFile(
            f"cannot read {source.path}: {error.strerror}; fix its permissions or exclude it "
            "with --exclude"
        ) from error


def collect(
    root: str,
    files: Iterable[SourceFile],
    *,
    jobs: int,
    cache: dict,
    progress: Progress | None = None,
    while_waiting: Callable[[], None] | None = None,
) -> Collected:
    """Facts for ``files``, reusing and updating ``cache`` (a dict loaded by load_cache).

    ``while_waiting`` runs in this process while worker processes parse (when they do), so
    its work (e.g. imports needed afterwards) overlaps theirs instead of following it.
    """
    entries: dict = cache.setdefault("files", {})
    results: dict[str, FileFacts] = {}
    hashes: dict[str, str] = {}
    todo: list[tuple[SourceFile, bytes, str]] = []
    files = list(files)
    for source in files:
        entry = entries.get(source.path)
        if entry and entry[0] == (source.mtime_ns, source.size) and entry[3] == source.module:
            results[source.path], hashes[source.path] = entry[2], entry[1]
            continue
        data = _read(root, source)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if entry and entry[1] == digest and entry[3] == source.module:
            entries[source.path] = ((source.mtime_ns, source.size), digest, entry[2], entry[3])
            results[source.path], hashes[source.path] = entry[2], digest
            continue
        todo.append((source, data, digest))
    cached = len(files) - len(todo)
    if progress:
        progress(cached, len(files))
    tasks = [(source, data) for source, data, _ in todo]
    if jobs > 1 and len(tasks) > 8:
        # Largest files first in small chunks: no process is left parsing a big file alone
        # at the end while the others idle.
        order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i][1]))
        context = multiprocessing.get_context()
        if context.get_start_method() == "fork":
            from . import extract  # noqa: F401  (once here, not once per forked worker)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            outputs = pool.map(
                _extract, [tasks[i] for i in order], chunksize=max(1, len(tasks) // (jobs * 32))
            )
            if while_waiting:
                while_waiting()
            unordered = _track(outputs, cached, len(files), progress)
        extracted = [unordered[0]] * len(tasks)
        for position, index in enumerate(order):
            extracted[index] = unordered[position]
    else:
        extracted = _track(map(_extract, tasks), cached, len(files), progress)
    for (source, _, digest), facts in zip(todo, extracted, strict=True):
        entries[source.path] = ((source.mtime_ns, source.size), digest, facts, source.module)
        results[source.path], hashes[source.path] = facts, digest
    for stale in set(entries) - {f.path for f in files}:
        del entries[stale]
    return Collected([results[f.path] for f in files], hashes, len(todo), cached)


def _track(
    outputs: Iterable[FileFacts], done: int, total: int, progress: Progress | None
) -> list[FileFacts]:
    collected = []
    for facts in outputs:
        collected.append(facts)
        done += 1
        if progress:
            progress(done, total)
    return collected
