"""The routing decision: stable buckets, monotonic ramps, sticky sources, overrides."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

from strangler.control.routing import bucket, decide, jwt_sub
from strangler.control.validate import parse_table
from tests.control.test_validate import base


def table_at(weight, **route):
    route.setdefault("sticky", ["header:X-User-ID"])
    table, messages = parse_table(base(weight=weight, **route))
    assert not messages
    return table


def service_keys(table, keys, header="x-user-id") -> set[str]:
    return {
        k
        for k in keys
        if decide(table, "GET", "/api/v1/products/1", {header: k}, "10.0.0.1").role == "service"
    }


def test_bucket_is_the_same_in_another_process():
    keys = [f"user-{i}" for i in range(50)]
    code = (
        "import json,sys; from strangler.control.routing import bucket; "
        f"print(json.dumps([bucket('products', k) for k in {keys!r}]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
        cwd=".",
    )
    assert json.loads(other.stdout) == [bucket("products", k) for k in keys]


def test_bucket_depends_on_the_route_too():
    keys = [f"user-{i}" for i in range(200)]
    assert [bucket("a", k) for k in keys] != [bucket("b", k) for k in keys]


def test_split_is_accurate_for_many_keys():
    keys = [f"user-{i}" for i in range(10000)]
    share = len(service_keys(table_at(25), keys)) / len(keys)
    assert 0.235 <= share <= 0.265


def test_raising_weight_never_moves_a_user_back():
    keys = [f"user-{i}" for i in range(5000)]
    previous: set[str] = set()
    for weight in (0, 5, 25, 50, 99.99, 100):
        now = service_keys(table_at(weight), keys)
        assert previous <= now
        if 0 < weight < 100:
            assert abs(len(now) / len(keys) - weight / 100) < 0.03
        previous = now
    assert previous == set(keys)


def test_sticky_sources_are_tried_in_order_then_client_address():
    table = table_at(50, sticky=["header:X-User-ID", "cookie:sessionid", "jwt_sub"])
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "alice"}).encode()).rstrip(b"=")
    token = f"Bearer eyJhbGciOiJub25lIn0.{payload.decode()}.sig"
    by_header = decide(table, "GET", "/api/v1/products", {"x-user-id": "alice"}, "1.1.1.1")
    by_cookie = decide(
        table, "GET", "/api/v1/products", {"cookie": "a=1; sessionid=alice"}, "1.1.1.1"
    )
    by_jwt = decide(table, "GET", "/api/v1/products", {"authorization": token}, "1.1.1.1")
    by_addr = decide(table, "GET", "/api/v1/products", {}, "alice")
    assert [d.key_source for d in (by_header, by_cookie, by_jwt, by_addr)] == [
        "header:X-User-ID",
        "cookie:sessionid",
        "jwt_sub",
        "client_address",
    ]
    assert len({d.bucket for d in (by_header, by_cookie, by_jwt, by_addr)}) == 1


def test_a_malformed_jwt_yields_no_key():
    assert jwt_sub("Bearer not-a-jwt") == ""
    assert jwt_sub("Bearer a.!!!.c") == ""
    assert jwt_sub("Basic dXNlcjpwYXNz") == ""


def test_override_needs_the_secret():
    secret = "0123456789abcdef-secret"
    table = table_at(0, override={"header": "X-Strangler-Force", "secret": secret})
    forced = decide(
        table, "GET", "/api/v1/products", {"x-strangler-force": f"service:{secret}"}, "1.1.1.1"
    )
    wrong = decide(
        table, "GET", "/api/v1/products", {"x-strangler-force": "service:guess"}, "1.1.1.1"
    )
    assert (forced.backend, forced.key_source) == ("catalog", "override")
    assert wrong.backend == "monolith"


def test_unknown_paths_and_foreign_hosts_go_to_the_monolith():
    table = table_at(100, host="shop.example.com")
    assert decide(table, "GET", "/admin/", {}, "1.1.1.1").backend == "monolith"
    assert decide(table, "GET", "/api/v1/productsX", {}, "1.1.1.1").backend == "monolith"
    other_host = decide(table, "GET", "/api/v1/products", {"host": "catalog:8100"}, "1.1.1.1")
    assert other_host.backend == "monolith"
    right_host = decide(
        table, "GET", "/api/v1/products/3", {"host": "shop.example.com:80"}, "1.1.1.1"
    )
    assert right_host.backend == "catalog"
