"""JSON read and written exactly: orjson, and the json module for integers past 64 bits,
which orjson reads as floats (so 2**64 and 2**64 + 1 would be equal) and does not write."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# 19 digits in a row: perhaps an integer orjson cannot hold (below -2**63 or above 2**64 - 1),
# found as 19 zeros once every digit is a zero (a C loop; a regular expression takes ~8 us/KB).
ALL_DIGITS_ZERO = bytes.maketrans(b"123456789", b"000000000")
LONG_DIGITS = b"0" * 19


def loads(body: bytes) -> Any:
    """The JSON document `body` (UTF-8); ValueError when it is none (NaN and Infinity are not
    JSON, nor is a number beyond a float's range)."""
    if LONG_DIGITS not in body.translate(ALL_DIGITS_ZERO):
        return orjson.loads(body)
    try:
        return json.loads(body.decode(), parse_float=_finite, parse_constant=_not_json)
    except RecursionError as error:
        raise ValueError("nested too deeply to read") from error


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond a float's range")
    return number


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def canonical(value: Any) -> bytes:
    """`value` as JSON with sorted keys, the same bytes for the same value; RecursionError
    when it is nested too deeply to write."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer past 64 bits, or nested deeper than orjson writes
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
