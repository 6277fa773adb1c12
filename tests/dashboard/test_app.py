"""Sign-in, CSRF, origin and input checks of the dashboard's API on a real file store.

In-process (Starlette's TestClient) against a real FileStore; the proxy admin URL points at
a closed port, so the scraper sees a replica that is down, as it would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from strangler.control import FileStore, RouteStore
from strangler.control.pgstore import PostgresStore
from strangler.dashboard import DashboardConfig, create_app
from strangler.dashboard.auth import COOKIE, LIFETIME_S, Sessions
from tests.control.conftest import ADMIN_DSN
from tests.dashboard.helpers import TOKEN, free_port
from tests.proxy.helpers import table

SECRET = "override-secret-0123456789"
HERE = "http://testserver"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    store = FileStore(str(tmp_path / "routes.json"))
    raw = table("http://127.0.0.1:1", "http://127.0.0.1:2", weight=10)
    raw["routes"][0]["override"] = {"header": "X-Force", "secret": SECRET}
    store.apply(raw, "seed", "seed")
    return store


def client_for(store: RouteStore, hosts: list[str] | None = None) -> TestClient:
    config = DashboardConfig(
        store=store,
        token=TOKEN,
        proxy_admin_urls=[f"http://127.0.0.1:{free_port()}"],
        allowed_hosts=hosts or ["testserver"],
    )
    return TestClient(create_app(config))


@pytest.fixture
def client(store: FileStore) -> Iterator[TestClient]:
    with client_for(store) as c:
        yield c


def signed_in(client: TestClient, actor: str = "alice") -> str:
    """Sign in; the CSRF token the page would get with its state."""
    answer = client.post("/api/session", json={"token": TOKEN, "actor": actor})
    assert answer.status_code == 200
    return str(client.get("/api/state").json()["csrf"])


def weight(client: TestClient, csrf: str, **body: object) -> tuple[int, dict]:
    answer = client.post(
        "/api/routes/products/weight",
        json={"seen_version": 1, **body},  # the table the page showed
        headers={"X-CSRF-Token": csrf, "Origin": HERE},
    )
    return answer.status_code, answer.json()


def test_signed_out_state_says_why_and_holds_no_table(client: TestClient) -> None:
    body = client.get("/api/state").json()
    assert body["signed_in"] is False
    assert "admin token" in body["error"]
    assert "table" not in body


def test_the_session_cookie_is_httponly_strict_and_the_token_never_in_it(
    client: TestClient,
) -> None:
    answer = client.post("/api/session", json={"token": TOKEN, "actor": "alice"})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie


def test_a_wrong_token_signs_no_one_in(client: TestClient) -> None:
    answer = client.post("/api/session", json={"token": "guess", "actor": "mallory"})
    assert answer.status_code == 401
    assert "wrong admin token" in answer.json()["error"]
    assert "set-cookie" not in answer.headers


def test_a_name_is_required_for_the_audit_log(client: TestClient) -> None:
    answer = client.post("/api/session", json={"token": TOKEN, "actor": "  "})
    assert answer.status_code == 400
    assert "audit log" in answer.json()["error"]


def test_sign_in_from_another_sites_page_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/session",
        json={"token": TOKEN, "actor": "x"},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status_code == 403


def test_a_flip_needs_session_csrf_origin_json_and_a_reason(
    client: TestClient, store: FileStore
) -> None:
    csrf = signed_in(client)
    assert weight(client, "wrong", weight=50, why="x")[0] == 403
    evil = client.post(
        "/api/routes/products/weight",
        json={"weight": 50, "why": "x"},
        headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
    )
    assert evil.status_code == 403
    form = client.post(  # what a cross-site form can send: not JSON
        "/api/routes/products/weight",
        content=b"weight=50&why=x",
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    status, body = weight(client, csrf, weight=50, why="  ")
    assert (status, body["field"]) == (400, "why")
    assert store.current().number == 1


def test_a_rejected_weight_lists_the_validation_message_and_changes_nothing(
    client: TestClient, store: FileStore
) -> None:
    csrf = signed_in(client)
    status, body = weight(client, csrf, weight=150, why="too far")
    assert status == 422
    assert [m["id"] for m in body["errors"]] == ["route.E008"]
    assert store.current().number == 1


def test_an_accepted_flip_is_audited_with_actor_and_reason(
    client: TestClient, store: FileStore
) -> None:
    csrf = signed_in(client, "alice")
    status, body = weight(client, csrf, weight=50, why="canary healthy")
    assert (status, body["version"]) == (200, 2)
    current = store.current()
    assert current.raw["routes"][0]["weight"] == 50
    assert (current.who, current.why) == ("alice via dashboard", "canary healthy")


def test_rollback_needs_a_version_number(client: TestClient, store: FileStore) -> None:
    csrf = signed_in(client)
    headers = {"X-CSRF-Token": csrf, "Origin": HERE}
    bad = client.post("/api/rollback", json={"version": "1; drop", "why": "x"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["id"] == "route.E023"
    missing = client.post(
        "/api/rollback", json={"version": 99, "why": "x", "seen_version": 1}, headers=headers
    )
    assert missing.json()["errors"][0]["id"] == "route.E023"
    unseen = client.post("/api/rollback", json={"version": 1, "why": "x"}, headers=headers)
    assert unseen.json()["errors"][0]["field"] == "seen_version"
    assert store.current().number == 1


def test_a_forged_expired_or_other_tokens_cookie_is_signed_out(client: TestClient) -> None:
    other = Sessions("another-token-entirely").issue("alice", time.time())
    expired = Sessions(TOKEN).issue("alice", time.time() - LIFETIME_S - 1)
    for cookie in ("garbage", "e30.AAAA", other, expired):
        client.cookies.set(COOKIE, cookie)
        assert client.get("/api/state").json()["signed_in"] is False


def test_the_page_state_never_carries_override_secrets(client: TestClient) -> None:
    signed_in(client)
    body = client.get("/api/state").text
    assert SECRET not in body
    state = json.loads(body)
    assert state["replicas"][0]["up"] is False


def test_the_page_forbids_inline_script_and_framing(client: TestClient) -> None:
    answer = client.get("/")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def test_bound_to_loopback_it_refuses_other_host_names(store: FileStore) -> None:
    with client_for(store, hosts=["127.0.0.1", "localhost"]) as c:
        assert c.get("/healthz").status_code == 400  # Host: testserver (DNS rebinding)
        assert c.get("/healthz", headers={"Host": "127.0.0.1:8082"}).status_code == 200


@pytest.mark.postgres
def test_on_the_postgres_store_a_flip_is_audited_and_a_lost_database_is_said(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url)
    store.apply(table("http://127.0.0.1:1", "http://127.0.0.1:2", weight=0), "seed", "seed")
    with client_for(store) as client:
        csrf = signed_in(client, "carol")
        assert weight(client, csrf, weight=5, why="first canary")[0] == 200
        newest = store.history(1)[0]
        assert (newest.number, newest.who, newest.why) == (2, "carol via dashboard", "first canary")
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        state = client.get("/api/state").json()
        assert "cannot read the route table" in state["table"]["error"]
        status, body = weight(client, csrf, weight=50, why="while it is gone")
        assert status == 503
        assert "nothing changed" in body["error"]
    store.close()


def test_a_flip_on_a_table_file_gone_from_disk_changes_nothing_and_says_so(
    client: TestClient, store: FileStore
) -> None:
    csrf = signed_in(client)
    Path(store.path).unlink()
    status, body = weight(client, csrf, weight=50, why="file gone")
    assert (status, body["errors"][0]["id"]) == (422, "route.E000")  # cannot read
    assert "not changed" in body["error"]
    assert not Path(store.path).exists()
    assert "cannot read the route table" in client.get("/api/state").json()["table"]["error"]


@pytest.mark.postgres
def test_an_empty_postgres_store_says_how_to_seed_it(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    with client_for(store) as client:
        csrf = signed_in(client)
        assert "strangler route set" in client.get("/api/state").json()["table"]["error"]
        status, body = weight(client, csrf, weight=5, why="nothing there")
        assert status == 404
        assert "strangler route set" in body["error"] and "nothing changed" in body["error"]
    store.close()


def test_runbook_actions_are_only_approve_and_abort_on_a_plain_run_id(
    store: FileStore, tmp_path: Path
) -> None:
    config = DashboardConfig(
        store=store,
        token=TOKEN,
        proxy_admin_urls=[],
        runbook_store=str(tmp_path / "runs.sqlite3"),
        allowed_hosts=["testserver"],
    )
    with TestClient(create_app(config)) as client:
        csrf = signed_in(client)
        headers = {"X-CSRF-Token": csrf, "Origin": HERE}
        for path in ("/api/runs/abc/resume", "/api/runs/--store=x/abort", "/api/runs/-h/approve"):
            answer = client.post(path, json={"why": "x"}, headers=headers)
            assert answer.status_code == 404, path
        missing = client.post("/api/runs/nope/abort", json={"why": "x"}, headers=headers)
        assert missing.status_code == 409
        assert "nope" in missing.json()["error"]
        assert client.post("/api/runs/nope/abort", json={"why": "x"}).status_code == 403


def test_without_a_run_store_the_runbook_panel_is_empty_and_actions_refused(
    client: TestClient,
) -> None:
    csrf = signed_in(client)
    assert client.get("/api/state").json()["runbooks"] is None
    answer = client.post(
        "/api/runs/r1/abort", json={"why": "x"}, headers={"X-CSRF-Token": csrf, "Origin": HERE}
    )
    assert answer.status_code == 404
    assert "--runbook-store" in answer.json()["error"]


def test_dead_letters_are_listed_only_for_the_configured_projects(client: TestClient) -> None:
    signed_in(client)
    # Listing runs the named settings module: a name from the query string must never do that.
    answer = client.get("/api/cdc/dead-letters", params={"settings": "monolith.settings"})
    assert answer.status_code == 404
    assert "--cdc-settings" in answer.json()["error"]
