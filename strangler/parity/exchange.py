"""The facts of one shadowed or replayed request: what was asked, what each side answered."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

Headers = tuple[tuple[str, str], ...]
EXAMPLE_BODY_BYTES = 65536  # body kept with an example pair in the store
# Headers whose values are a user's credentials: never written to a HAR or an example pair.
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
REDACTED = "[redacted]"


def without_secrets(headers: Headers, names: frozenset[str] = frozenset()) -> list[list[str]]:
    """Headers as stored with an example pair, SECRET_HEADERS' values (and those of `names`,
    lower case: a route's `header:NAME` redact entries) replaced by REDACTED: examples stay
    in the store for days and reports show them."""
    hidden = SECRET_HEADERS | names
    return [[k, REDACTED if k.lower() in hidden else v] for k, v in headers]


def redaction(redact: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """A route's `redact` entries as (JSON field names, lower-case header names)."""
    fields, headers = set(), set()
    for entry in redact:
        if entry[:7].lower() == "header:":
            headers.add(entry[7:].lower())
        else:
            fields.add(entry)
    return frozenset(fields), frozenset(headers)


def scrub_json(body: bytes, fields: frozenset[str]) -> bytes | None:
    """A JSON body with the values of `fields` (names at any depth) replaced by REDACTED, or
    None when it is not JSON (other bodies are kept as they are). A body nested too deeply to
    walk is REDACTED whole: it cannot be checked, so it is not kept."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    except RecursionError:
        return REDACTED.encode()

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: REDACTED if k in fields else scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    try:
        return json.dumps(scrub(doc)).encode()
    except RecursionError:
        return REDACTED.encode()


@dataclass(frozen=True)
class Reply:
    """One backend's answer; `status` 0 with `error` set when there was no answer at all;
    `truncated` when `body` is only the first bytes of a longer answer (the capture cap)."""

    status: int
    headers: Headers = ()
    body: bytes = b""
    latency_ms: float = 0.0
    base_url: str = ""
    error: str = ""
    truncated: bool = False

    def header(self, name: str) -> str:
        """The values of header `name` (lower case), joined by ", " as HTTP allows."""
        return ", ".join(self._values.get(name, ()))

    def values(self, name: str) -> list[str]:
        """Each value of header `name` (lower case), in order (Set-Cookie cannot be joined)."""
        return self._values.get(name, [])

    @cached_property
    def _values(self) -> dict[str, list[str]]:
        """Header values by lower-case name, built at the first lookup: a comparison looks up
        half a dozen names, each a scan of every header otherwise."""
        values: dict[str, list[str]] = {}
        for k, v in self.headers:
            values.setdefault(k.lower(), []).append(v)
        return values

    def as_dict(
        self, fields: frozenset[str] = frozenset(), headers: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """As stored with an example pair, with `redaction()`'s fields and headers blanked."""
        body = (scrub_json(self.body, fields) if fields else None) or self.body
        return {
            "status": self.status,
            "headers": without_secrets(self.headers, headers),
            "body": body[:EXAMPLE_BODY_BYTES].decode("utf-8", "replace"),
            "latency_ms": round(self.latency_ms, 3),
            "error": self.error,
        }


@dataclass(frozen=True)
class Exchange:
    """A request sent to the primary (what the client got), the candidate and maybe a secondary."""

    route: str
    method: str
    path: str
    primary: Reply
    candidate: Reply
    secondary: Reply | None = None
    request_headers: Headers = ()
    request_body: bytes = b""
    at: float = 0.0
    redact: tuple[str, ...] = ()  # the route's `redact` entries (JSON field names, header:NAME)

    def as_dict(self) -> dict[str, Any]:
        """The pair as stored for a report's side-by-side example: credentials and the route's
        `redact` entries blanked, as in a HAR recording."""
        fields, headers = redaction(self.redact)
        return {
            "method": self.method,
            "path": self.path,
            "request_headers": without_secrets(self.request_headers, headers),
            "primary": self.primary.as_dict(fields, headers),
            "candidate": self.candidate.as_dict(fields, headers),
        }
