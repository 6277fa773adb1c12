"""A route's shadow policy: validated with the table, versioned and audited like weights,
changed with `strangler route shadow`; a bad one never replaces the table in force."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from strangler.cli import main
from strangler.control import open_store
from strangler.control.admin import AdminApi
from strangler.control.model import table_to_dict
from strangler.control.validate import parse_table
from strangler.control.watch import StoreWatcher
from tests.control.test_validate import base, ids


def shadowed(**shadow):
    table = base(weight=0, shadow=shadow)
    table["backends"]["monolith_b"] = {"url": "http://127.0.0.1:8001"}
    return table


def test_a_shadow_policy_builds_with_safe_defaults_and_round_trips():
    compare = {
        "ignore": ["results[*].updated_at"],
        "list_keys": {"results": "id"},
        "endpoints": {"GET /api/v1/products/{slug}": {"unordered": ["tags"]}},
    }
    raw = shadowed(percent=12.5, secondary="monolith_b", compare=compare)
    table, messages = parse_table(raw)
    assert messages == []
    policy = table.routes[0].shadow
    assert (policy.percent, policy.candidate, policy.secondary) == (
        Decimal("12.5"),
        "catalog",
        "monolith_b",
    )
    assert policy.methods == ("GET", "HEAD", "OPTIONS") and policy.threshold == 1250
    assert policy.compare.for_endpoint("GET /api/v1/products/{slug}").unordered == ("tags",)
    again, _ = parse_table(table_to_dict(table))
    assert again == table


@pytest.mark.parametrize(
    ("shadow", "expected"),
    [
        ({"percent": 101}, ["route.E040"]),
        ({"percent": 10.001}, ["route.E040"]),
        ({"percent": 10, "record_percent": -1}, ["route.E040"]),
        ({"percent": 10, "noise_percent": 100.5}, ["route.E040"]),
        ({"percent": 10, "candidate": "ghost"}, ["route.E041"]),
        ({"percent": 10, "candidate": "monolith"}, ["route.E041"]),
        ({"percent": 10, "secondary": "catalog"}, ["route.E041"]),
        ({"percent": 10, "methods": ["GET", "POST"]}, ["route.E042"]),
        ({"percent": 10, "methods": ["GET", "POST"], "sandbox": "monolith_b"}, ["route.E042"]),
        ({"percent": 10, "methods": ["get"]}, ["route.E011"]),
        ({"percent": 10, "timeout": 0}, ["route.E043"]),
        ({"percent": 10, "timeout": float("inf")}, ["route.E043"]),
        ({"percent": 10, "max_in_flight": 0}, ["route.E043"]),
        ({"percent": 10, "redact": ["header:"]}, ["route.E044"]),
        ({"percent": 10, "compare": {"ignore": ["results[*]..price"]}}, ["route.E045"]),
        ({"percent": 10, "compare": {"timestamp_precision": "h"}}, ["route.E046"]),
        ({"percent": 10, "compare": {"endpoints": {"/x": {}}}}, ["route.E047"]),
        ({"percent": 10, "percnet": 1}, ["route.E021"]),
    ],
)
def test_a_bad_shadow_policy_is_rejected_with_its_id(shadow, expected):
    assert ids(shadowed(**shadow)) == expected


@pytest.mark.parametrize("everything", ["**", "*", "***", "?*", "?", "[*]", "[*].*", "*.*"])
def test_an_ignore_matching_every_field_is_refused(everything, tmp_path, capsys):
    """`ignore = ["**"]` (or `*`, `?`, `[*]`, any glob of wildcards alone) would ignore whole
    bodies: parity 100% whatever the service answers. `route set` refuses it, nothing applied."""
    seed = tmp_path / "seed.json"
    compare = {"ignore": ["request_id", everything]}
    seed.write_text(json.dumps(shadowed(percent=5, compare=compare)))
    config = tmp_path / "routes.toml"
    assert main(["route", "set", str(seed), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        f"route.E048 routes[0] (products).shadow.compare.ignore: '{everything}' is wildcards "
        "alone, naming no field: it matches every field at its depth (every item of a list "
        "body for [*]), so whole bodies would be ignored and parity 100% by construction"
    ) in err
    assert open_store(str(config)).is_empty()  # nothing applied
    # The same in an endpoint's refinement.
    nested = {"endpoints": {"GET /api/v1/products/{id}": {"ignore": [everything]}}}
    assert ids(shadowed(percent=5, compare=nested)) == ["route.E048"]


def test_ignore_globs_naming_fields_are_accepted():
    compare = {"ignore": ["results[*].updated_at", "**.updated_at", "meta.**", "*.id",
                          "header:*", "results[*].?"]}  # fmt: skip
    table, messages = parse_table(shadowed(percent=5, compare=compare))
    assert messages == []
    assert table.routes[0].shadow.compare.ignore == tuple(compare["ignore"])


def test_writes_are_shadowed_only_onto_a_named_sandbox():
    raw = shadowed(percent=10, methods=["GET", "POST"], sandbox="catalog")
    table, messages = parse_table(raw)
    assert messages == [] and table.routes[0].shadow.methods == ("GET", "POST")


def test_every_shadow_problem_is_reported_at_once():
    found = ids(shadowed(percent=200, candidate="ghost", timeout=-1, compare={"ignore": [""]}))
    assert found == ["route.E040", "route.E041", "route.E043", "route.E045"]


def test_shadow_changes_are_versioned_and_audited(store_location):
    store = open_store(store_location)
    store.apply(base(weight=0), who="ana", why="initial")
    version = store.set_shadow("products", 10, who="bo", why="parity before the canary")
    latest = store.history()[0]
    assert (latest.number, latest.who, latest.why) == (version.number, "bo",
                                                      "parity before the canary")  # fmt: skip
    assert "shadow" not in latest.before["routes"][0]
    assert latest.raw["routes"][0]["shadow"] == {"percent": 10}
    store.set_shadow("products", 0)
    assert store.current().table.routes[0].shadow.percent == 0
    rolled = store.rollback(version.number)
    assert rolled.table.routes[0].shadow.percent == 10


def test_route_shadow_cli_changes_one_field_and_rejects_bad_input(tmp_path, capsys):
    config = tmp_path / "routes.toml"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(shadowed(percent=5, compare={"ignore": ["request_id"]})))
    assert main(["route", "set", str(seed), "--config", str(config)]) == 0
    assert main(["route", "shadow", "products", "20", "--secondary", "monolith_b",
                 "--config", str(config), "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    store = open_store(str(config))
    policy = store.current().table.routes[0].shadow
    assert (policy.percent, policy.secondary, policy.compare.ignore) == (
        Decimal(20),
        "monolith_b",
        ("request_id",),
    )
    assert main(["route", "shadow", "products", "12.345", "--config", str(config)]) == 2
    assert main(["route", "shadow", "orders", "5", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "route.E040 routes[0] (products).shadow.percent" in err
    assert "route.E022 routes: no route 'orders'" in err
    assert store.current().number == 2  # nothing changed


def test_a_hand_edited_bad_shadow_leaves_the_old_table_serving(tmp_path):
    config = tmp_path / "routes.toml"
    store = open_store(str(config))
    store.apply(shadowed(percent=5))
    watcher = StoreWatcher(store)
    assert watcher.load().number == 1
    served, rejected = [], []
    watcher.on_version, watcher.on_rejected = served.append, rejected.append
    text = config.read_text().replace("percent = 5", "percent = 500")
    config.write_text(text + '\n[routes.shadow.compare]\nignore = ["a..b"]\n')
    watcher.check()
    assert served == []
    assert sorted(m.id for m in rejected[0]) == ["route.E040", "route.E045"]
    assert open_store(str(config)).history()[0].number == 1


def test_admin_api_sets_the_shadow_share(tmp_path):
    store = open_store(str(tmp_path / "routes.toml"))
    store.apply(base(weight=0))
    api = AdminApi(store, token="t" * 20)
    auth = {"authorization": "Bearer " + "t" * 20, "content-type": "application/json"}
    reply = api.handle("POST", "/api/routes/products/shadow", auth,
                       json.dumps({"percent": 15, "why": "shadow"}).encode())  # fmt: skip
    assert reply.status == 200
    assert store.current().table.routes[0].shadow.percent == 15
    bad = api.handle("POST", "/api/routes/products/shadow", auth, b'{"percent": 300}')
    assert bad.status == 422 and b"route.E040" in bad.body
