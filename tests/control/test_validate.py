"""The route table is validated as a whole; every problem comes back with a stable id."""

from __future__ import annotations

from decimal import Decimal

import pytest

from strangler.control.validate import parse_table


def base(**route):
    entry = {
        "id": "products",
        "prefix": "/api/v1/products",
        "monolith": "monolith",
        "service": "catalog",
        "weight": 25,
    }
    entry.update(route)
    return {
        "default_backend": "monolith",
        "backends": {
            "monolith": {"url": "http://127.0.0.1:8000"},
            "catalog": {"url": "http://127.0.0.1:8100"},
        },
        "routes": [entry],
    }


def ids(raw) -> list[str]:
    table, messages = parse_table(raw)
    assert (table is None) == bool(messages)
    return sorted(m.id for m in messages)


def test_a_valid_table_builds_with_state_derived_from_weight():
    table, messages = parse_table(base(weight=12.25))
    assert messages == []
    route = table.route("products")
    assert route.weight == Decimal("12.25") and route.threshold == 1225
    assert route.state == "canary"


def test_every_problem_is_reported_at_once_with_its_id():
    raw = base(weight=101, service="nowhere", wieght=3)
    raw["routes"].append(
        {
            "id": "bad",
            "regex": "([",
            "monolith": "monolith",
            "service": "catalog",
            "methods": ["get"],
        }
    )
    raw["default_backend"] = "ghost"
    assert ids(raw) == [
        "route.E007",
        "route.E008",
        "route.E009",
        "route.E011",
        "route.E018",
        "route.E021",
    ]


def test_messages_name_the_field_and_say_what_to_do():
    _, messages = parse_table(base(service="nowhere"))
    (message,) = messages
    assert message.field == "routes[0] (products).service"
    assert "unknown backend 'nowhere'" in message.message
    assert "[backends.nowhere]" in message.hint


def test_weight_allows_two_decimals_only():
    assert ids(base(weight="33.33")) == []
    assert ids(base(weight=33.333)) == ["route.E008"]
    assert ids(base(weight=-1)) == ["route.E008"]
    assert ids(base(weight=True)) == ["route.E008"]


@pytest.mark.parametrize("typed", ["10_0", "\u0663", "1e1", "+5", " 10", "5.", ".5"])
def test_a_typed_weight_is_plain_ascii_digits(typed):
    """`route weight products 10_0` must not move all traffic (Decimal reads it as 100), nor
    an Arabic-Indic digit or an exponent pass as a weight an operator did not see."""
    assert ids(base(weight=typed)) == ["route.E008"]
    assert ids(base(weight=0, shadow={"percent": typed})) == ["route.E040"]


def test_a_route_shadowed_by_an_earlier_one_is_unreachable():
    raw = base(prefix="/api")
    raw["routes"].append(
        {"id": "orders", "prefix": "/api/orders", "monolith": "monolith", "service": "catalog"}
    )
    assert ids(raw) == ["route.E014"]
    raw["routes"].reverse()  # the specific route first: both reachable
    assert ids(raw) == []


def test_same_prefix_with_overlapping_methods_is_ambiguous():
    raw = base(methods=["GET", "POST"])
    raw["routes"].append(
        {
            "id": "writes",
            "prefix": "/api/v1/products",
            "methods": ["POST", "PUT"],
            "monolith": "monolith",
            "service": "catalog",
        }
    )
    assert ids(raw) == ["route.E015"]


def test_state_must_agree_with_weight():
    assert ids(base(weight=0, state="service")) == ["route.E013"]
    assert ids(base(weight=100, state="retired")) == []
    assert ids(base(weight=50, state="nonsense")) == ["route.E013"]


def test_backend_urls_timeouts_sticky_and_override_are_checked():
    raw = base(
        sticky=["header:", "cookie:sid", "voodoo"], override={"header": "X-F", "secret": "x"}
    )
    raw["backends"]["catalog"] = {"url": "https://catalog/api", "timeout": 0}
    assert ids(raw) == ["route.E004", "route.E012", "route.E012", "route.E016", "route.E017"]


def test_a_table_that_is_not_a_mapping_is_rejected():
    assert ids([1, 2]) == ["route.E001"]
    assert ids({}) == ["route.E002", "route.E002"]


def test_a_table_that_would_make_the_proxy_misbehave_is_rejected():
    """Each of these used to pass validation, then hung, misrouted or broke framing."""
    raw = base(host="admin.example:8080")  # never matched: the proxy compares without port
    raw["backends"]["catalog"]["timeout"] = float("nan")  # a request would wait forever
    raw["backends"]["monolith"]["connect_timeout"] = float("inf")
    assert ids(raw) == ["route.E016", "route.E016", "route.E024"]
    framing = base(override={"header": "Host", "secret": "s" * 16})  # Host dropped upstream
    framing["settings"] = {"backend_header": "Content-Length"}  # a second length to clients
    assert ids(framing) == ["route.E017", "route.E020"]
    # Headers are read as latin-1: a non-ASCII secret could never be matched.
    assert ids(base(override={"header": "X-Force", "secret": "é" * 16})) == ["route.E017"]
    assert ids(base(host="Admin.Example")) == []


@pytest.mark.parametrize("prefix", ["//", "/api//v1", "/api?x=1", "/api#x", "/a b"])
def test_a_prefix_is_a_plain_path(prefix):
    """`//` validated and matched every request (its slashes stripped, nothing was left), so
    a route meant for one path took all traffic at weight 100; `/api?x=1` and `/api#x`
    validated and never matched (paths are matched without the query, and carry no fragment)."""
    assert "route.E010" in ids(base(prefix=prefix))


def test_a_prefix_of_one_slash_is_every_path():
    assert "route.E010" not in ids(base(prefix="/"))
