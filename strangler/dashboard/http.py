"""HTTP plumbing the dashboard's handlers share: error answers, JSON bodies, origin, headers."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# The analyzer's report is one self-contained file with inline script and style; sandboxed
# it runs in an opaque origin, so its script can never call this dashboard's API.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; sandbox allow-scripts"
)
MAX_BODY = 64 * 1024


def problem(status: int, error: str, hint: str = "", **extra: Any) -> JSONResponse:
    """An error the page shows as is: what was wrong and what to do."""
    return JSONResponse({"error": error, "hint": hint, **extra}, status_code=status)


class SecurityHeaders:
    """Adds the page's CSP and no-sniff/no-referrer headers; API answers are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def with_headers(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                csp = REPORT_CSP if path == "/report" else PAGE_CSP
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if not path.startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def signed_out_body() -> dict[str, Any]:
    return {
        "signed_in": False,
        "error": "not signed in: nothing can be read or changed without the admin token",
        "hint": "sign in with the admin token ($STRANGLER_ADMIN_TOKEN of the proxy)",
    }


def signed_out() -> JSONResponse:
    return JSONResponse(signed_out_body(), status_code=401)


async def json_body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, or the 4xx answer saying what is wrong with it."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return problem(415, "send the body as application/json")
    raw = b""
    async for chunk in request.stream():  # stop reading at the limit, before sign-in too
        raw += chunk
        if len(raw) > MAX_BODY:
            return problem(413, f"body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        return problem(400, "the body is not JSON")
    if not isinstance(body, dict):
        return problem(400, "the body must be a JSON object")
    return body


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site's page."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"
