"""Line numbers for places in a TOML file: tomllib gives values, not where they were written.

Good enough for the flat files boundaries.toml uses (tables, arrays of tables, one key per
line, string arrays possibly over several lines); a place it cannot find gets line 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
STRING = re.compile(r'"[^"\\]*"|\'[^\']*\'')  # plain TOML strings, as boundaries.toml uses


@dataclass(frozen=True)
class Block:
    """The lines of one table: ``[name]`` or the ``index``-th ``[[name]]`` (0 for top level)."""

    name: str
    index: int
    start: int
    end: int


class TomlLines:
    """Where tables, keys and string values sit in one TOML text (1-based line numbers)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        blocks: list[Block] = []
        counts: dict[str, int] = {}
        name, index, start = "", 0, 1
        for number, line in enumerate(self.lines, 1):
            found = HEADER.match(line)
            if found:
                blocks.append(Block(name, index, start, number - 1))
                name = found.group(2)
                index = counts.get(name, 0) if found.group(1) == "[[" else 0
                counts[name] = index + 1
                start = number
        blocks.append(Block(name, index, start, len(self.lines)))
        self.blocks = {(b.name, b.index): b for b in blocks}
        self.strings: dict[tuple[str, int, str], dict[str, int]] = {}

    def table(self, name: str, index: int = 0) -> int:
        block = self.blocks.get((name, index))
        return block.start if block else 0

    def key(self, name: str, index: int, key: str) -> int:
        """The line of ``key = ...`` inside the table, else the table's header line."""
        block = self.blocks.get((name, index))
        if block is None:
            return 0
        for number in range(block.start, block.end + 1):
            found = KEY.match(self.lines[number - 1])
            if found and found.group(1) == key:
                return number
        return block.start

    def value(self, name: str, index: int, key: str, value: str) -> int:
        """The line holding the string ``value`` of ``key`` in the table, else the key's line."""
        start = self.key(name, index, key)
        return self._strings(name, index, key, start).get(value, start)

    def _strings(self, name: str, index: int, key: str, start: int) -> dict[str, int]:
        """Each string of one key's value -> its first line (read once per key)."""
        cached = self.strings.get((name, index, key))
        if cached is not None:
            return cached
        found: dict[str, int] = {}
        block = self.blocks.get((name, index))
        end = block.end if block and start else start - 1
        for number in range(start, end + 1):
            line = self.lines[number - 1]
            if number > start and KEY.match(line):
                break
            for text in STRING.findall(line):
                found.setdefault(text[1:-1], number)
        self.strings[(name, index, key)] = found
        return found
