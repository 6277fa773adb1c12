"""The history panel's words for each version, and secrets never shown."""

from __future__ import annotations

from strangler.dashboard.history import HIDDEN, changes, redact

BEFORE = {
    "default_backend": "monolith",
    "settings": {"max_body_bytes": 100},
    "backends": {"monolith": {"url": "http://a:1"}, "catalog": {"url": "http://b:2"}},
    "routes": [
        {"id": "products", "weight": 0, "state": "monolith"},
        {"id": "cart", "weight": 5, "override": {"header": "X-F", "secret": "s" * 20}},
    ],
}


def test_a_weight_flip_reads_as_one_line_per_field() -> None:
    after = {**BEFORE, "routes": [{**BEFORE["routes"][0], "weight": 25, "state": "canary"},
                                  BEFORE["routes"][1]]}  # fmt: skip
    assert changes(BEFORE, after) == [
        "products: state monolith -> canary",
        "products: weight 0 -> 25",
    ]


def test_added_removed_reordered_and_override_changes_are_named_without_the_secret() -> None:
    secret = "t" * 20
    after = {
        "default_backend": "catalog",
        "settings": {"max_body_bytes": 200},
        "backends": {"monolith": {"url": "http://a:9"}, "orders": {"url": "http://c:3"}},
        "routes": [
            {"id": "cart", "weight": 5, "override": {"header": "X-F", "secret": secret}},
            {"id": "orders", "weight": 0},
        ],
    }
    lines = changes(BEFORE, after)
    assert lines == [
        "default_backend monolith -> catalog",
        "settings.max_body_bytes 100 -> 200",
        "backend orders added",
        "backend catalog removed",
        "backend monolith: url http://a:1 -> http://a:9",
        "route orders added",
        "route products removed",
        "cart: override changed",
    ]
    assert not any(secret in line or "s" * 20 in line for line in lines)


def test_the_first_version_and_an_identical_table() -> None:
    assert changes(None, BEFORE) == ["first table"]
    assert changes(BEFORE, BEFORE) == ["no change (same table stored again)"]


def test_redact_hides_override_secrets_and_leaves_the_table_alone() -> None:
    shown = redact(BEFORE)
    assert shown is not None
    assert shown["routes"][1]["override"] == {"header": "X-F", "secret": HIDDEN}
    assert BEFORE["routes"][1]["override"]["secret"] == "s" * 20
    assert redact(None) is None
