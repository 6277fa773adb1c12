"""Header names that frame, route or are written by the proxy: one list for tables and proxy.

A table may not name one of them as its override or backend header (route.E017, route.E020),
and the proxy removes or rewrites them on every request, so both read them from here.
"""

from __future__ import annotations

# RFC 9110 7.6.1: connection-specific headers never cross a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Written by the proxy itself; a client's own values never pass through unchanged.
# X-Strangler-Shadow marks shadow requests (services skip side effects on it), so a client
# must never be able to send it on a real request.
PROXY_WRITTEN = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id",
     "x-strangler-shadow"}
)  # fmt: skip
# Frame or route the message; `Connection: host` must never make Host hop-by-hop.
FRAMING = frozenset({"content-length", "expect", "host"})
RESERVED_HEADERS = HOP_BY_HOP | PROXY_WRITTEN | FRAMING
