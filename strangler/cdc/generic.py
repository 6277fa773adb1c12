"""Generic relations across databases: content type ids are remapped by (app_label, model).

`django_content_type` ids are assigned per database, so a copied `content_type_id` would point
at another model in the service (an order's tag shown on a brand). The capture side adds the
content type's natural key next to each such column (`content_type_id@natural`), and the
consumer writes the id the receiving database has for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import models

NATURAL_SUFFIX = "@natural"


def points_at_content_type(field: models.Field) -> bool:
    """A foreign key to django.contrib.contenttypes' ContentType."""
    related = field.related_model if field.many_to_one else None
    meta = getattr(related, "_meta", None)  # None, or a lazy "app.Model" string
    return meta is not None and meta.label == "contenttypes.ContentType"


def content_type_fields(columns: Mapping[str, models.Field]) -> dict[str, models.Field]:
    """The columns of a mapping whose target field is a foreign key to ContentType."""
    return {column: f for column, f in columns.items() if points_at_content_type(f)}


def remap(
    label: str, fields: Mapping[str, models.Field], row: Mapping[str, Any], using: str
) -> tuple[Mapping[str, Any], list[str]]:
    """`row` with the content type ids of `fields` (see `content_type_fields`) replaced by the
    receiving database's, and the problems."""
    if not fields:
        return row, []
    from django.contrib.contenttypes.models import ContentType

    remapped, problems = dict(row), []
    for column, field in fields.items():
        if remapped.get(column) is None:
            continue
        natural = remapped.get(column + NATURAL_SUFFIX)
        if not (isinstance(natural, list) and len(natural) == 2):
            problems.append(
                f"{label}.{field.name}: content type id {remapped[column]} arrived without its "
                "(app_label, model), and ids differ between databases; run `manage.py migrate` "
                "in the source to reinstall its capture triggers"
            )
            continue
        try:
            target = ContentType.objects.db_manager(using).get_by_natural_key(*natural)
        except ContentType.DoesNotExist:
            problems.append(f"{label}.{field.name}: no content type {'.'.join(natural)} here")
            continue
        remapped[column] = target.pk
    return remapped, problems
