"""Text bodies by their tokens: where two monolith calls disagree (noise: a CSRF token, a
clock) and whether a candidate differs anywhere else.

A token is a run of characters between whitespace and markup or list delimiters, so a word,
a number, a date or a token in HTML, CSV or plain text is one. Tokens are aligned with
difflib's SequenceMatcher (Ratcliff and Obershelp, "Pattern Matching: The Gestalt Approach",
Dr. Dobb's Journal, July 1988). Pure functions; no I/O.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

TOKEN = re.compile(rb"[^\s<>\"'=&;,]+|[<>\"'=&;,]")
# Past this many tokens a side is not aligned (the matcher is quadratic at worst) and every
# difference counts as one outside the noise: a false alarm, never a false pass.
MAX_TOKENS = 20_000


def _tokens(body: bytes) -> list[bytes] | None:
    found = TOKEN.findall(body)
    return found if len(found) <= MAX_TOKENS else None


def _changes(a: list[bytes], b: list[bytes]) -> list[tuple[int, int]]:
    """The spans [i1, i2) of `a` that `b` does not share; an insertion is an empty span."""
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2) for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal"]


def differs_outside_noise(primary: bytes, secondary: bytes, candidate: bytes) -> bool:
    """Whether `candidate` differs from `primary` in a part of it that `secondary` (the
    monolith asked again) agreed on: a difference the noise cannot explain."""
    p, s, c = _tokens(primary), _tokens(secondary), _tokens(candidate)
    if p is None or s is None or c is None:
        return True
    varying: set[int] = set()
    inserted: set[int] = set()  # positions of p before which the secondary had more
    for i1, i2 in _changes(p, s):
        varying.update(range(i1, i2))
        if i1 == i2:
            inserted.add(i1)
    for i1, i2 in _changes(p, c):
        if i1 == i2:
            if not (i1 in inserted or i1 in varying or i1 - 1 in varying):
                return True
        elif not varying.issuperset(range(i1, i2)):
            return True
    return False
