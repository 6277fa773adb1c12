"""A value the target column cannot hold exactly is refused, never written truncated or rounded.

In the test database (PostgreSQL in `make test`): the monolith's consume side maps the service's
`catalog_product` onto `catalog.Product` (name varchar(200), price numeric(12, 2)).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from monolith.catalog.models import Category, Product
from strangler.cdc import conf
from strangler.cdc.apply import Refused, apply_events
from strangler.cdc.envelope import OutboxRow, decode, encode
from strangler.cdc.exact import decimal_shape
from strangler.cdc.mapping import resolve
from strangler.cdc.models import AppliedPosition

pytestmark = pytest.mark.django_db


def product(seq: int, pk: int, category: int, **values: object) -> object:
    stamp = "2026-01-02T03:04:05+00:00"
    image = {"id": pk, "sku": f"S{pk}", "slug": f"s{pk}", "name": "Tea", "description": "",
             "price": "1.50", "currency": "EUR", "is_active": True, "category_id": category,
             "created_at": stamp, "updated_at": stamp}  # fmt: skip
    text = json.dumps(image | values).replace('"@', "").replace('@"', "")  # @n@ = bare number
    row = OutboxRow(seq, "catalog", "catalog_product", str(pk), "u", None, 1, None, text, 1)
    return decode(encode(row), str(pk))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"name": "x" * 217}, "217 characters; varchar(200) would truncate it"),
        ({"price": "@10.1299@"}, "10.1299 has 4 decimal places; numeric(12, 2) would round it"),
        ({"price": "@12345678901.5@"}, "11 digits before the point; numeric(12, 2) cannot"),
        ({"category_id": "@7.5@"}, "7.5 is not an integer"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_and_nothing_is_written(values, reason):
    category = Category.objects.create(name="Tea", slug="tea")
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}
    fits = product(10, 701, category.pk)
    too_big = product(11, 702, category.pk, **values)

    with pytest.raises(Refused) as refused:
        apply_events(mappings, [fits, too_big])

    assert list(refused.value.reasons) == [("catalog_product", "702")]
    assert reason in refused.value.reasons[("catalog_product", "702")]
    assert not Product.objects.filter(pk__in=[701, 702]).exists()  # all or nothing
    assert not AppliedPosition.objects.exists()
    assert apply_events(mappings, [fits]) == 1  # what the consumer does next


def test_values_that_fit_exactly_are_written_unchanged():
    category = Category.objects.create(name="Tea", slug="tea")
    mappings = {m.source_table: resolve(m) for m in conf.current().consume.mappings}
    exact = product(10, 703, category.pk, name="é" * 200, price="@9999999999.99@")
    trailing_zeros = product(11, 704, category.pk, price="@10.1300@")

    assert apply_events(mappings, [exact, trailing_zeros]) == 2

    assert Product.objects.get(pk=703).name == "é" * 200
    assert Product.objects.get(pk=703).price == Decimal("9999999999.99")
    assert Product.objects.get(pk=704).price == Decimal("10.13")


def test_decimal_shape_counts_digits_on_both_sides_of_the_point():
    shapes = {v: decimal_shape(Decimal(v)) for v in ["10.1299", "0.05", "1E+3", "10.1300", "0"]}
    assert shapes == {"10.1299": (2, 4), "0.05": (0, 2), "1E+3": (4, 0), "10.1300": (2, 2),
                      "0": (0, 0)}  # fmt: skip
