"""A route's CompareConfig compiled once into what the diff walk reads: regexes and sets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from strangler.control.compare import CompareConfig

ISO_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def glob_regex(glob: str) -> str:
    """A field-path glob as a regex: `[*]` is a list item, `*` one name, `**` any depth."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("[*]", i):
            out.append(r"\[\*\]")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append(r"[^.\[]*")
            i += 1
        elif glob[i] == "?":
            out.append(r"[^.\[]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def _pattern(globs: tuple[str, ...], subtree: bool) -> re.Pattern[str] | None:
    if not globs:
        return None
    tail = r"(?:$|[.\[])" if subtree else "$"
    return re.compile(f"^(?:{'|'.join(glob_regex(g) for g in globs)}){tail}")


@dataclass(frozen=True)
class Normalizer:
    """Compiled normalizers: `ignore` matches a JSON field and everything under it,
    `ignore_headers` the `header:NAME` entries' headers (never a JSON field, nor the reverse)."""

    ignore: re.Pattern[str] | None
    ignore_headers: re.Pattern[str] | None
    unordered: re.Pattern[str] | None
    list_keys: dict[str, str]
    numeric_tolerance: float
    decimal_strings: bool
    timestamp_precision: str
    headers: tuple[str, ...]

    def ignored(self, path: str) -> bool:
        return self.ignore is not None and self.ignore.match(path) is not None

    def header_ignored(self, name: str) -> bool:
        """Whether header `name` (lower case) is left out of the comparison."""
        return self.ignore_headers is not None and self.ignore_headers.match(name) is not None


def compile_config(config: CompareConfig) -> Normalizer:
    """Compile once per table load (or per endpoint, cached by the caller)."""
    fields = tuple(g for g in config.ignore if not g.startswith("header:"))
    headers = tuple(g[7:] for g in config.ignore if g.startswith("header:"))
    return Normalizer(
        ignore=_pattern(fields, subtree=True),
        ignore_headers=_pattern(headers, subtree=False),
        unordered=_pattern(config.unordered, subtree=False),
        list_keys=dict(config.list_keys),
        numeric_tolerance=config.numeric_tolerance,
        decimal_strings=config.decimal_strings,
        timestamp_precision=config.timestamp_precision,
        headers=config.headers,
    )


def truncate_timestamp(text: str, precision: str) -> datetime | None:
    """An ISO-8601 timestamp cut to `precision` (ms, s, min), or None if `text` is not one."""
    if not ISO_TIMESTAMP.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if precision == "ms":
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if precision == "s":
        return moment.replace(microsecond=0)
    return moment.replace(second=0, microsecond=0)
