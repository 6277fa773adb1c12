"""A mapping's rename, drop, transform and handler do what docs/cdc.md says when configured
right (test_config.py covers the bad configurations).

In the test database, onto the monolith's Category.
"""

from __future__ import annotations

import json

import pytest

from monolith.catalog.models import Category
from strangler.cdc.apply import apply_events
from strangler.cdc.conf import MappingSpec
from strangler.cdc.envelope import Envelope, OutboxRow, decode, encode
from strangler.cdc.mapping import TableMapping, problems, resolve

pytestmark = pytest.mark.django_db
STAMP = "2026-01-02T03:04:05+00:00"
HANDLED: list[tuple[str, int, str | None]] = []


def shout(value: str) -> str:
    """A transform: the service keeps slugs in capitals."""
    return value.upper()


def keep_names(event: Envelope, mapping: TableMapping, using: str) -> None:
    """A handler: records what it was given instead of the upsert."""
    HANDLED.append((event.op, event.seq, (event.after or {}).get("title")))


def event(seq: int, op: str = "u", **values: object) -> Envelope:
    image = {"id": 7, "title": "Tea", "slug": "tea", "secret": "x", "description": "",
             "parent_id": None, "created_at": STAMP, "updated_at": STAMP} | values  # fmt: skip
    row = OutboxRow(seq, "svc", "svc_category", "7", op, 1, 1, None, json.dumps(image), 1)
    return decode(encode(row), "7")


def mapped(**options: object) -> dict[str, TableMapping]:
    spec = MappingSpec("svc_category", "catalog.Category", **options)  # type: ignore[arg-type]
    assert problems(spec) == []
    return {spec.source_table: resolve(spec)}


def test_rename_drop_and_transform_land_each_column_where_the_mapping_says():
    mappings = mapped(
        rename={"title": "name"},
        drop=("parent_id",),
        transform={"slug": "tests.cdc.test_mapping.shout"},
    )

    assert apply_events(mappings, [event(1, parent_id=3)]) == 1

    category = Category.objects.get(pk=7)
    assert (category.name, category.slug, category.parent_id) == ("Tea", "TEA", None)
    assert apply_events(mappings, [event(2, title="Green tea")]) == 1
    assert Category.objects.get(pk=7).name == "Green tea"


def test_a_handler_replaces_the_upsert_and_sees_each_newer_event_once_in_order():
    HANDLED.clear()
    mappings = mapped(rename={"title": "name"}, handler="tests.cdc.test_mapping.keep_names")

    assert apply_events(mappings, [event(5, title="b"), event(4, title="a")]) == 1
    assert apply_events(mappings, [event(5, title="b"), event(6, "d")]) == 1  # 5: a duplicate

    assert HANDLED == [("u", 4, "a"), ("u", 5, "b"), ("d", 6, "Tea")]
    assert not Category.objects.filter(pk=7).exists()  # the handler wrote nothing
