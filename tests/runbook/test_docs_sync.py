"""docs/runbooks/ and the built-in runbooks say the same thing; every command named exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from strangler.cli import build_parser
from strangler.runbook import builtin

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "extract-a-context.md",
    "failed-canary.md",
    "cdc-lag-incident.md",
    "flip-write-ownership.md",
    "retire-the-monolith-path.md",
]
BLOCK = re.compile(r"```\n(.*?)```", re.S)
INLINE = re.compile(r"`(strangler [^`]+)`")


def commands(text: str) -> list[tuple[str, bool]]:
    """(command, complete): lines of code blocks are whole commands; inline mentions in the
    prose may name just a subcommand (`strangler runbook run`)."""
    found = [
        (line.strip(), True)
        for block in BLOCK.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("strangler ")
    ]
    found += [(c, False) for c in INLINE.findall(BLOCK.sub("", text))]
    return [(c.split("  #")[0].strip(), complete) for c, complete in found]


def valid(command: str, complete: bool) -> bool:
    words = shlex.split(command)[1:]
    try:
        build_parser().parse_args(words if complete else [*words, "--help"])
    except SystemExit as exit_:
        return exit_.code == 0
    return True


@pytest.mark.parametrize("name", builtin.names())
def test_every_builtin_step_appears_on_its_page(name):
    runbook = builtin.resolve(name)
    page = ROOT / runbook.doc
    assert page.exists(), f"{name} names {runbook.doc}, which does not exist"
    text = page.read_text()
    missing = [s.id for s in runbook.steps if f"`{s.id}`" not in text]
    assert not missing, f"{runbook.doc} does not describe steps {missing}"
    assert f"`{name}`" in text


@pytest.mark.parametrize("page", [*PAGES, "../runbook.md"])
def test_every_command_named_on_the_pages_exists(page):
    text = (ROOT / "docs" / "runbooks" / page).read_text()
    found = commands(text)
    assert found, f"{page} names no command"
    wrong = [command for command, complete in found if not valid(command, complete)]
    assert not wrong, f"{page}: not valid strangler commands: {wrong}"


def test_the_reference_links_every_page():
    text = (ROOT / "docs" / "runbook.md").read_text()
    for page in PAGES:
        assert f"(runbooks/{page})" in text
