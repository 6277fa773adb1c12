"""The facts of one shadowed or replayed request: what was asked, what each side answered."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

Headers = tuple[tuple[str, str], ...]
EXAMPLE_BODY_BYTES = 65536  # body kept with an example pair in the store
# Headers whose values are a user's credentials: never written to a HAR or an example pair.
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
REDACTED = "[redacted]"


def without_secrets(headers: Headers) -> list[list[str]]:
    """Headers as stored with an example pair, SECRET_HEADERS' values replaced by REDACTED:
    examples stay in the store for days and reports show them."""
    return [[k, REDACTED if k.lower() in SECRET_HEADERS else v] for k, v in headers]


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": without_secrets(self.headers),
            "body": self.body[:EXAMPLE_BODY_BYTES].decode("utf-8", "replace"),
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

    def as_dict(self) -> dict[str, Any]:
        """The pair as stored for a report's side-by-side example."""
        return {
            "method": self.method,
            "path": self.path,
            "request_headers": without_secrets(self.request_headers),
            "primary": self.primary.as_dict(),
            "candidate": self.candidate.as_dict(),
        }
