"""Source read as Python reads it: evidence quotes the line it names, whatever the file's line
ends, separators or declared encoding, and a file that does not decode fails the check.

Each case writes catalog/views.py of the locked shop as bytes, with raw SQL on payments'
table (catalog may depend on nothing), and runs the real CLI as a CI job would.
"""

from __future__ import annotations

import json

import pytest

from tests.analyzer.conftest import crossings_in
from tests.analyzer.test_analyze import cli

VIEWS = "catalog/views.py"
EXECUTE = 'cursor.execute("DELETE FROM payments_payment")'
VOID = (
    "from django.db import connection\n\n\ndef void():\n"
    f"    with connection.cursor() as cursor:\n        {EXECUTE}\n"
)
CROSSING = ("catalog", "payments", "raw_sql")


def execute_line(text: str) -> int:
    """The line of ``EXECUTE`` as Python numbers it: only \\n, \\r\\n and \\r end a line."""
    before = text[: text.index(EXECUTE)]
    return before.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


@pytest.mark.parametrize(
    "separator",
    ["\f", "\v", "\x1c", "\x85", "\u2028", "\u2029"],
    ids=["form feed", "vertical tab", "file separator", "NEL", "LS", "PS"],
)
def test_evidence_quotes_its_own_line_after_a_character_str_splitlines_breaks_at(
    separator, locked_shop
):
    # str.splitlines() ends a line at each of these; Python's tokenizer at none of them.
    shop, lock = locked_shop
    text = f"# one{separator}two\nLABEL = 'three{separator}four'\n\n" + VOID
    (shop / VIEWS).write_bytes(text.encode())

    code, found = crossings_in(shop, lock, VIEWS)

    assert code == 1
    assert found == [{"crossing": CROSSING, "line": execute_line(text), "detail": EXECUTE}]
    report = json.loads(cli(str(shop), "--json", "--no-cache").stdout)
    lines = sum(p.read_bytes().count(b"\n") for p in shop.rglob("*.py"))
    assert report["stats"]["lines"] == lines


@pytest.mark.parametrize(
    "text",
    [VOID.replace("\n", "\r"), VOID.replace("\n", "\r\n").replace("\r\n\r\n", "\r\n\r")],
    ids=["old Mac CR only", "CRLF with a lone CR"],
)
def test_findings_in_a_file_with_cr_line_ends_name_their_own_line(text, locked_shop):
    shop, lock = locked_shop
    (shop / VIEWS).write_bytes(text.encode())

    code, found = crossings_in(shop, lock, VIEWS)

    assert code == 1
    assert found == [{"crossing": CROSSING, "line": VOID.count("\n"), "detail": EXECUTE}]


def test_a_file_declaring_latin_1_is_quoted_in_latin_1(locked_shop):
    shop, lock = locked_shop
    text = "# -*- coding: latin-1 -*-\n" + VOID.replace(EXECUTE, EXECUTE + "  # café réglé")
    (shop / VIEWS).write_bytes(text.encode("latin-1"))

    code, found = crossings_in(shop, lock, VIEWS)

    assert code == 1
    assert found == [
        {"crossing": CROSSING, "line": execute_line(text), "detail": EXECUTE + "  # café réglé"}
    ]


UNDECODABLE = {
    "latin-1 bytes in a string, no declaration": (
        VIEWS,
        b"from catalog.models import Product\n\nname = 'caf\xe9'\n",
        3,
        "utf-8",
    ),
    "UTF-8 bytes in a file declaring ASCII": (
        VIEWS,
        b"# coding: ascii\nfrom catalog.models import Product\n\nname = 'caf\xc3\xa9'\n",
        4,
        "ascii",
    ),
    "an unknown declared encoding": (
        VIEWS,
        b"#!/usr/bin/env python\n# coding: klingon\nfrom catalog.models import Product\n",
        2,
        "klingon",
    ),
    "latin-1 bytes in a migration's string": (
        "orders/migrations/0002_notes.py",
        b"from django.db import migrations\n\n\n"
        b"class Migration(migrations.Migration):\n"
        b'    dependencies = [("orders", "0001_initial")]\n'
        b"    note = 'r\xe9gl\xe9'\n",
        6,
        "utf-8",
    ),
}


@pytest.mark.parametrize(
    "comment",
    [b"# caf\xe9\n", b"# -*- coding: utf-8 -*-\n# r\xe9gl\xe9\n", b"\xef\xbb\xbf# caf\xe9\n"],
    ids=["no-declaration", "declared-utf-8", "utf-8-bom"],
)
def test_bytes_that_do_not_decode_in_comments_only_are_read_as_python_runs_them(
    comment, locked_shop
):
    # Python never decodes a comment: a latin-1 "# café" in a UTF-8 file imports and runs.
    # The analyzer refused the file as a parse error, and so never saw its crossing.
    shop, lock = locked_shop
    data = comment + VOID.replace(EXECUTE, EXECUTE + "  # r\xe9gl\xe9").encode("latin-1")
    (shop / VIEWS).write_bytes(data)

    code, found = crossings_in(shop, lock, VIEWS)

    assert code == 1
    line = data.split(b"DELETE FROM")[0].count(b"\n") + 1
    assert [(f["crossing"], f["line"]) for f in found] == [(CROSSING, line)]


@pytest.mark.parametrize("case", sorted(UNDECODABLE))
def test_a_file_that_does_not_decode_fails_the_check_at_its_line(case, locked_shop):
    shop, lock = locked_shop
    path, data, line, encoding = UNDECODABLE[case]
    (shop / path).write_bytes(data)

    result = cli(str(shop), "--check", str(lock), "--no-cache", "--json")

    assert result.returncode == 1, result.stdout
    errors = json.loads(result.stdout)["parse_errors"]
    assert [(e["file"], e["line"]) for e in errors] == [(path, line)]
    assert encoding in errors[0]["message"]
    text = cli(str(shop), "--check", str(lock), "--no-cache").stdout
    assert f"{path}:{line}" in text


@pytest.mark.parametrize(
    "value",
    ['"\\N{BOGUS NAME}"', 'b"caf\u00e9"', '"\\x4"'],
    ids=["unknown character name", "non-ASCII bytes", "truncated escape"],
)
def test_a_string_literal_python_rejects_fails_the_check_at_its_line(value, locked_shop):
    # libcst parses these; evaluating them raised SyntaxError and killed the whole run.
    shop, lock = locked_shop
    (shop / VIEWS).write_text(f"{VOID}\n\nNOTE = {value}\n", encoding="utf-8")

    result = cli(str(shop), "--check", str(lock), "--no-cache", "--json")

    assert result.returncode == 1, result.stderr
    errors = json.loads(result.stdout)["parse_errors"]
    line = VOID.count("\n") + 3
    assert [(e["file"], e["line"]) for e in errors] == [(VIEWS, line)]
    assert errors[0]["message"].startswith("syntax error: "), errors
