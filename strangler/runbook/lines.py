"""Line numbers for a runbook's TOML keys, so every problem can name its file:line.

tomllib keeps no positions; the runbook layout is regular enough (`[[steps]]` tables, `key =`
lines, gates one per line or as `[[steps.gates]]`) to find them by scanning the text.
"""

from __future__ import annotations

import re

HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
GATE = re.compile(r"(?:^|[{,\s])gate\s*=")


class LineIndex:
    """Where the top-level keys, params, steps and their keys and gates start (1-based)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.steps: list[int] = []  # line of each [[steps]] header
        self.top_keys: dict[str, int] = {}
        self.params: dict[str, int] = {}
        section = ""
        for number, line in enumerate(self.lines, start=1):
            header = HEADER.match(line)
            if header:
                section = header.group(1)
                if section == "steps" and line.lstrip().startswith("[["):
                    self.steps.append(number)
                elif section.startswith("params."):
                    self.params.setdefault(section.split(".", 1)[1], number)
                self.top_keys.setdefault(section.split(".", 1)[0], number)
                continue
            key = KEY.match(line)
            if key and not section:
                self.top_keys.setdefault(key.group(1), number)
            elif key and section == "params":
                self.params.setdefault(key.group(1), number)

    def top(self, key: str) -> int:
        return self.top_keys.get(key, 1)

    def param(self, name: str) -> int:
        return self.params.get(name, self.top("params"))

    def step(self, index: int) -> int:
        return self.steps[index] if index < len(self.steps) else self.top("steps")

    def _block(self, index: int) -> range:
        start = self.step(index)
        end = self.steps[index + 1] if index + 1 < len(self.steps) else len(self.lines) + 1
        return range(start, end)

    def in_step(self, index: int, key: str) -> int:
        """The line of `key = ...` inside step `index`, else the step's header line."""
        for number in self._block(index):
            match = KEY.match(self.lines[number - 1])
            if match and match.group(1) == key:
                return number
        return self.step(index)

    def gate(self, index: int, number: int) -> int:
        """The line of the step's gate `number` (0-based), else the `gates` line."""
        found = [n for n in self._block(index) if GATE.search(self.lines[n - 1])]
        return found[number] if number < len(found) else self.in_step(index, "gates")
