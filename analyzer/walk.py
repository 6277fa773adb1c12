"""Find the Python files of a project and the module name each would be imported as."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

INSTALLED_PACKAGES = {"node_modules", "site-packages", "dist-packages"}
TEST_DIR_NAMES = {"tests", "test", "testing"}


class UnreadableFile(Exception):
    """A project file could not be read; the message names it and what to do."""


@dataclass(frozen=True)
class SourceFile:
    """A file to analyze: path relative to the project root, module name, kind."""

    path: str
    module: str
    is_package: bool
    is_migration: bool
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Walk:
    """The files to analyze and what was left out, with the reason."""

    files: tuple[SourceFile, ...]
    skipped: tuple[tuple[str, str], ...]


def is_test_file(name: str) -> bool:
    return (
        name.startswith("test_")
        or name.endswith("_tests.py")
        or name.endswith("_test.py")
        or name in ("tests.py", "conftest.py")
    )


def walk_project(root: str, *, include_tests: bool = False, exclude: tuple[str, ...] = ()) -> Walk:
    """Walk ``root`` and name every ``.py`` file's module by its chain of packages.

    A file's module is its name prefixed by every enclosing package (a directory holding an
    ``__init__.py``, or a namespace folder inside one), so ``src/`` layouts and several
    top-level packages need no configuration.
    """
    found: list[tuple[str, list[str], bool, bool, int, int]] = []
    skipped: list[tuple[str, str]] = []
    root = os.path.abspath(root)
    packages: dict[str, bool] = {}
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for name in sorted(dirnames):
            rel = os.path.join(rel_dir, name)
            if name == "__pycache__":
                continue  # bytecode, no source
            if name.startswith("."):
                skipped.append((rel, "hidden directory"))
            elif name in INSTALLED_PACKAGES:
                skipped.append((rel, "installed packages"))
            elif os.path.islink(os.path.join(directory, name)):
                skipped.append((rel, "symbolic link to a directory (not followed)"))
            elif os.path.exists(os.path.join(directory, name, "pyvenv.cfg")):
                skipped.append((rel, "virtual environment"))
            elif not include_tests and name in TEST_DIR_NAMES:
                skipped.append((rel, "tests (use --include-tests)"))
            elif any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                skipped.append((rel, "excluded"))
            else:
                keep.append(name)
        dirnames[:] = keep
        # A folder without __init__.py inside a package is a namespace package (Python 3
        # imports it; Django finds management/commands in one); a top-level folder is not.
        packages[directory] = "__init__.py" in filenames or (
            directory != root
            and packages.get(os.path.dirname(directory), False)
            and os.path.basename(directory).isidentifier()
        )
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = os.path.join(rel_dir, name)
            if any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                skipped.append((rel, "excluded"))
                continue
            # A management command is run by its name (manage.py test_emails), never a test.
            command = rel_dir.endswith(os.path.join("management", "commands"))
            if not include_tests and is_test_file(name) and not command:
                skipped.append((rel, "tests (use --include-tests)"))
                continue
            try:
                stat = os.stat(os.path.join(directory, name))
            except OSError as error:
                raise UnreadableFile(
                    f"cannot read {rel}: {error.strerror}; fix it or skip it with --exclude"
                ) from error
            parts = []
            current = directory
            while packages.get(current) and current != root:
                parts.append(os.path.basename(current))
                current = os.path.dirname(current)
            if packages.get(current) and current == root:
                parts.append(os.path.basename(root))
            parts.reverse()
            stem = name[:-3]
            is_package = stem == "__init__"
            module_parts = parts if is_package else [*parts, stem]
            is_migration = "migrations" in parts and not is_package
            found.append(
                (rel, module_parts, is_package, is_migration, stat.st_size, stat.st_mtime_ns)
            )
    by_module: dict[str, int] = {}
    for _, module_parts, *_ in found:
        key = ".".join(module_parts)
        by_module[key] = by_module.get(key, 0) + 1
    files = []
    for rel, module_parts, is_package, is_migration, size, mtime in found:
        module = ".".join(module_parts)
        if by_module[module] > 1 or not module:
            # Two files claim one name (scripts in separate folders): name them by path.
            stem = rel[:-3].replace(os.sep, ".")
            module = stem[: -len(".__init__")] if is_package else stem
        files.append(SourceFile(rel, module, is_package, is_migration, size, mtime))
    files.sort(key=lambda f: f.path)
    skipped.sort()
    return Walk(tuple(files), tuple(skipped))
