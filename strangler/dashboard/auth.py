"""Sessions derived from the admin token: a signed HttpOnly cookie and a CSRF token per session.

Nothing is stored server-side: the cookie carries who signed in and until when, signed
with a key derived from the admin token, so changing the token ends every session and a
dashboard restart keeps them. The CSRF token is derived from the session the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "strangler_dashboard"
LIFETIME_S = 8 * 3600
MAX_ACTOR = 64


@dataclass(frozen=True)
class Session:
    """Who signed in (recorded as the actor of every change) and until when."""

    actor: str
    expires: float
    nonce: str


def actor_problem(actor: str) -> str:
    """Why a name cannot be the audit log's actor, or '' when it can."""
    if not actor.strip():
        return "say who you are: your name is recorded in the audit log with every change"
    if len(actor) > MAX_ACTOR or not actor.isprintable():
        return f"a name of at most {MAX_ACTOR} printable characters"
    return ""


class Sessions:
    """Checks the admin token and issues and verifies the cookies derived from it."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the dashboard needs an admin token to check sign-ins against")
        self._token = token.encode()
        self._key = hashlib.sha256(b"strangler-dashboard-session\0" + self._token).digest()

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.strip().encode(), self._token)

    def _sign(self, purpose: bytes, payload: bytes) -> str:
        digest = hmac.new(self._key, purpose + b"\0" + payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, actor: str, now: float) -> str:
        body = {"actor": actor.strip(), "exp": int(now + LIFETIME_S), "n": secrets.token_hex(8)}
        payload = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(b'session', payload.encode())}"

    def verify(self, cookie: str, now: float) -> Session | None:
        """The session a cookie proves, or None (forged, expired, or another token's)."""
        payload, _, signature = cookie.partition(".")
        if not hmac.compare_digest(signature, self._sign(b"session", payload.encode())):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(body["actor"]), float(body["exp"]), str(body["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > now else None

    def csrf_token(self, session: Session) -> str:
        """The value a page of this session sends in X-CSRF-Token with every change."""
        return self._sign(b"csrf", f"{session.actor}\0{session.nonce}".encode())

    def csrf_matches(self, session: Session, given: str) -> bool:
        return hmac.compare_digest(given, self.csrf_token(session))
