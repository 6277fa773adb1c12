"""The dashboard as a Starlette app: the page, its JSON state, sign-in, and the actions.

Every /api call but sign-in needs the session cookie; every change also needs the
session's CSRF token in X-CSRF-Token and, when the browser sends one, an Origin of this
very dashboard. Route changes go through strangler.control exactly like the CLI's; runbook
approve and abort are `strangler runbook`'s own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from strangler.control import Message, RouteStore, ValidationFailed
from strangler.control.store import ConcurrentChange, StoreUnavailable
from strangler.dashboard import runbooks, view
from strangler.dashboard.auth import COOKIE, LIFETIME_S, Session, Sessions, actor_problem
from strangler.dashboard.cdc import CdcWatcher, read_dead_letters, read_reconcile
from strangler.dashboard.control import ControlPath, who
from strangler.dashboard.http import (
    SecurityHeaders,
    json_body,
    problem,
    same_origin,
    signed_out,
    signed_out_body,
)
from strangler.dashboard.parity import ParityWatcher
from strangler.dashboard.scrape import MetricsCollector
from strangler.parity import StoreError

STATIC = Path(__file__).parent / "static"
STATE_TTL_S = 0.5  # every open page polls each second; they share one computation
# What a store raises when it cannot be read: gone file, empty or unreachable database.
STORE_ERRORS = (StoreUnavailable, LookupError, ValidationFailed, OSError, psycopg.OperationalError)


@dataclass(frozen=True)
class DashboardConfig:
    """What `strangler dashboard` was started with."""

    store: RouteStore
    token: str
    proxy_admin_urls: list[str]
    cdc_settings: list[str] = field(default_factory=list)
    reconcile_report: Path | None = None
    analyzer_report: Path | None = None
    runbook_store: str = ""
    parity_store: str = ""
    allowed_hosts: list[str] = field(default_factory=lambda: ["*"])
    scrape_interval: float = 1.0


class Dashboard:
    """The request handlers and the collectors they read; one per running dashboard."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.sessions = Sessions(config.token)
        self.control = ControlPath(config.store)
        self.metrics = MetricsCollector(config.proxy_admin_urls, config.scrape_interval)
        self.cdc = CdcWatcher(config.cdc_settings)
        self.runbooks = (
            runbooks.RunbookWatcher(config.runbook_store) if config.runbook_store else None
        )
        self.parity = (
            ParityWatcher(config.parity_store, self.route_ids) if config.parity_store else None
        )
        self._state: tuple[float, dict[str, Any]] | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loops = [self.metrics.run(), self.cdc.run()]
        if self.runbooks is not None:
            loops.append(self.runbooks.run())
        if self.parity is not None:
            loops.append(self.parity.run())
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def route_ids(self) -> list[str]:
        """The table's route ids (none while the store cannot be read)."""
        try:
            return [r["id"] for r in self.control.view().current.raw["routes"]]
        except STORE_ERRORS:
            return []

    def session(self, request: Request) -> Session | None:
        return self.sessions.verify(request.cookies.get(COOKIE, ""), time.time())

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def state(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:  # a 200, so the sign-in page loads without a console error
            return JSONResponse(signed_out_body())
        data = await self.shared_state()
        data = data | {
            "signed_in": True,
            "actor": session.actor,
            "csrf": self.sessions.csrf_token(session),
        }
        return JSONResponse(data)

    async def shared_state(self) -> dict[str, Any]:
        """The page state of this moment, computed at most every STATE_TTL_S for all viewers."""
        now = time.time()
        if self._state is not None and now - self._state[0] < STATE_TTL_S:
            return self._state[1]
        try:
            table, error = await run_in_threadpool(self.control.view), ""
        except STORE_ERRORS as failure:
            table, error = None, f"cannot read the route table: {failure}"
        reconcile = self.config.reconcile_report
        sources = view.Sources(
            table,
            error,
            list(self.metrics.ticks),
            list(self.metrics.replicas.values()),
            list(self.cdc.readings.values()),
            await run_in_threadpool(read_reconcile, reconcile) if reconcile else None,
            self.config.analyzer_report is not None,
            now,
            None if self.runbooks is None else self.runbooks.reading,
            None if self.parity is None else self.parity.reading,
        )
        data = await run_in_threadpool(view.state, sources)
        self._state = (now, data)
        return data

    async def sign_in(self, request: Request) -> Response:
        if not same_origin(request):
            return problem(403, "sign-in from another site's page refused")
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        if not self.sessions.token_matches(str(body.get("token", ""))):
            return problem(
                401,
                "wrong admin token: nothing was signed in",
                "use the token the proxy's admin API uses ($STRANGLER_ADMIN_TOKEN)",
            )
        actor = str(body.get("actor", ""))
        if reason := actor_problem(actor):
            return problem(400, reason)
        response = JSONResponse({"actor": actor.strip()})
        response.set_cookie(
            COOKIE,
            self.sessions.issue(actor, time.time()),
            max_age=LIFETIME_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def sign_out(self, request: Request) -> Response:
        if not same_origin(request):
            return problem(403, "sign-out from another site's page refused")
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response

    async def weight(self, request: Request) -> Response:
        route_id = request.path_params["route_id"]
        return await self.change(
            request,
            lambda body, actor, why: self.control.set_weight(
                route_id, body.get("weight"), actor, why, version_in(body, "seen_version")
            ),
        )

    async def rollback(self, request: Request) -> Response:
        return await self.change(
            request,
            lambda body, actor, why: self.control.rollback(
                version_in(body, "version"), actor, why, version_in(body, "seen_version")
            ),
        )

    async def checked(self, request: Request) -> tuple[Session, dict[str, Any], str] | Response:
        """Session, CSRF token, origin, JSON body and a reason: what every action needs."""
        session = self.session(request)
        if session is None:
            return signed_out()
        if not same_origin(request) or not self.sessions.csrf_matches(
            session, request.headers.get("x-csrf-token", "")
        ):
            return problem(
                403,
                "refused: the request did not come from this dashboard's page (CSRF check)",
                "reload the page and try again",
            )
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        why = str(body.get("why", "")).strip()
        if not why:
            return problem(400, "say why: the reason is recorded in the audit log", field="why")
        return session, body, why

    async def run_action(self, request: Request) -> Response:
        """Approve or abort a runbook run, as `strangler runbook approve|abort` does."""
        if self.runbooks is None:
            return problem(404, "no run store: start the dashboard with --runbook-store")
        checked = await self.checked(request)
        if isinstance(checked, Response):
            return checked
        session, body, why = checked
        action, run_id = request.path_params["action"], request.path_params["run_id"]
        if action not in runbooks.ACTIONS or not runbooks.RUN_ID.fullmatch(run_id):
            return problem(404, f"no such action {action!r} on run {run_id!r}")
        step = str(body.get("step", ""))  # the step the page showed waiting (approve)
        done, said = await run_in_threadpool(
            runbooks.act, self.runbooks.location, action, run_id, who(session.actor), why, step
        )
        await self.runbooks.refresh()
        self._state = None
        if not done:
            return problem(409, f"{action} refused: {said}", "the run is as it was")
        return JSONResponse({"done": action, "run": run_id, "said": said})

    async def change(
        self, request: Request, act: Callable[[dict[str, Any], str, str], Any]
    ) -> Response:
        """A route table change: checked, then `act` in a thread; errors as the CLI's."""
        checked = await self.checked(request)
        if isinstance(checked, Response):
            return checked
        session, body, why = checked
        try:
            version = await run_in_threadpool(act, body, session.actor, why)
        except ValidationFailed as rejected:
            messages = [m.as_dict() for m in rejected.messages]
            return problem(422, "rejected; the route table was not changed", errors=messages)
        except ConcurrentChange as conflict:
            return problem(409, f"{conflict}; nothing changed", "reload and try again")
        except LookupError as missing:  # an empty PostgreSQL store
            return problem(404, f"{missing}; nothing changed")
        except (StoreUnavailable, psycopg.OperationalError, OSError) as down:
            reason = str(down).strip().splitlines()[0] if str(down).strip() else "unreachable"
            return problem(503, f"the route store cannot be reached: {reason}; nothing changed")
        finally:
            self._state = None  # the next poll shows the table as it is now, changed or not
        return JSONResponse(version.summary())

    async def dead_letters(self, request: Request) -> Response:
        """What is parked in one of the configured projects (never another settings module)."""
        if self.session(request) is None:
            return signed_out()
        settings = request.query_params.get("settings", "")
        if settings not in self.config.cdc_settings:
            return problem(404, f"{settings!r} is not one of the dashboard's --cdc-settings")
        letters, error = await run_in_threadpool(read_dead_letters, settings)
        if error:
            return problem(503, f"cannot list the dead letters of {settings}: {error}")
        return JSONResponse({"settings": settings, "dead_letters": letters})

    async def parity_example(self, request: Request) -> Response:
        """One stored example pair (primary and candidate side by side in the page)."""
        if self.session(request) is None:
            return signed_out()
        if self.parity is None:
            return problem(404, "no parity store: start the dashboard with --parity-store")
        query = request.query_params
        wanted = (query.get("route", ""), query.get("endpoint", ""), query.get("field", ""))
        try:
            pair = await run_in_threadpool(self.parity.example, *wanted)
        except (StoreError, sqlite3.Error, psycopg.Error) as error:
            return problem(503, f"cannot read the parity store: {error}")
        if pair is None:
            return problem(404, "no example kept for that field (examples expire with the store)")
        return JSONResponse(pair)

    async def report(self, request: Request) -> Response:
        if self.session(request) is None:
            return Response(
                "Sign in on the dashboard first; the report opens from its page.\n",
                status_code=401,
                media_type="text/plain",
            )
        path = self.config.analyzer_report
        if path is None or not path.is_file():
            return Response(
                f"No analyzer report at {path}: run `strangler analyze PATH --format html "
                "-o report.html` and start the dashboard with --report report.html.\n",
                status_code=404,
                media_type="text/plain",
            )
        return FileResponse(path, media_type="text/html")


def version_in(body: dict[str, Any], key: str) -> int:
    """A table version number the page sent (`seen_version`: the table it showed when its
    user decided, so a change made since in another tab is not silently overwritten)."""
    number = body.get(key)
    if not isinstance(number, int) or isinstance(number, bool):
        raise ValidationFailed(
            [Message("route.E023", key, f"{number!r} is not a version number", "reload the page")]
        )
    return number


def create_app(config: DashboardConfig) -> Starlette:
    """The ASGI app `strangler dashboard` serves with uvicorn."""
    board = Dashboard(config)
    endpoint = Callable[[Request], Awaitable[Response]]
    routes: list[tuple[str, endpoint, list[str]]] = [
        ("/", board.page, ["GET"]),
        ("/healthz", board.healthz, ["GET"]),
        ("/report", board.report, ["GET"]),
        ("/api/state", board.state, ["GET"]),
        ("/api/session", board.sign_in, ["POST"]),
        ("/api/session", board.sign_out, ["DELETE"]),
        ("/api/routes/{route_id}/weight", board.weight, ["POST"]),
        ("/api/rollback", board.rollback, ["POST"]),
        ("/api/runs/{run_id}/{action:str}", board.run_action, ["POST"]),
        ("/api/parity/example", board.parity_example, ["GET"]),
        ("/api/cdc/dead-letters", board.dead_letters, ["GET"]),
    ]
    return Starlette(
        routes=[Route(path, handler, methods=methods) for path, handler, methods in routes]
        + [Mount("/static", StaticFiles(directory=STATIC), name="static")],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=config.allowed_hosts),
        ],
        lifespan=board.lifespan,
    )
