"""Generic relations keep pointing at the same model although content type ids differ between
the monolith's database and the service's.

In the test database (PostgreSQL in `make test`): the monolith's Notification (a generic
relation) captured, applied onto a copy whose content type ids are another database's.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.test.utils import isolate_apps

from monolith.catalog.models import Category
from monolith.notifications.models import Notification
from strangler.cdc import triggers
from strangler.cdc.apply import Refused, apply_events
from strangler.cdc.checks import model_problems
from strangler.cdc.conf import MappingSpec
from strangler.cdc.envelope import OutboxRow, decode, encode
from strangler.cdc.mapping import TableMapping
from strangler.cdc.models import OutboxEvent

pytestmark = pytest.mark.django_db


def copy_model() -> type[models.Model]:
    with isolate_apps("monolith.notifications"):

        class NoteCopy(models.Model):
            subject = models.CharField(max_length=200)
            content_type = models.ForeignKey(
                ContentType, on_delete=models.DO_NOTHING, db_constraint=False
            )
            object_id = models.PositiveBigIntegerField()

            class Meta:
                app_label = "notifications"
                db_table = "cdc_test_note"

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE cdc_test_note (id bigint PRIMARY KEY, subject varchar(200), "
            "content_type_id integer, object_id bigint)"
        )
    return NoteCopy


def onto(model: type[models.Model]) -> dict[str, TableMapping]:
    columns = {f.attname: f for f in model._meta.concrete_fields}
    spec = MappingSpec("notifications_notification", "notifications.NoteCopy")
    return {spec.source_table: TableMapping(spec, model, columns, model._meta.pk, {}, None)}


def relayed_image() -> dict:
    row = OutboxEvent.objects.get(table_name="notifications_notification")
    return row.after


def event(image: str, seq: int = 1):
    pk = str(seq)
    outbox = OutboxRow(seq, "notifications", "notifications_notification", pk, "c", 1, 1, None,
                       image, 1)  # fmt: skip
    return decode(encode(outbox), pk)


def test_a_generic_relation_lands_on_the_same_model_whatever_the_ids():
    triggers.install(connection, [triggers.captured_table(Notification, ())])
    tea = Category.objects.create(name="Tea", slug="tea")
    OutboxEvent.objects.all().delete()
    Notification.objects.create(kind="k", recipient="a@b.c", subject="About tea", body="",
                                content_type=ContentType.objects.get_for_model(tea),
                                object_id=tea.pk)  # fmt: skip
    image = relayed_image()
    assert image["content_type_id@natural"] == ["catalog", "category"]
    # In the service's database, content type ids were assigned in another order.
    image["content_type_id"] = ContentType.objects.get_for_model(Notification).pk
    copy = copy_model()

    assert apply_events(onto(copy), [event(json.dumps(image))]) == 1

    landed = copy.objects.get()
    assert landed.content_type.model_class() is Category and landed.object_id == tea.pk


def test_a_content_type_without_its_natural_key_is_refused_not_copied():
    copy = copy_model()
    image = '{"id": 1, "subject": "s", "content_type_id": 3, "object_id": 1}'
    with pytest.raises(Refused, match="arrived without its \\(app_label, model\\)"):
        apply_events(onto(copy), [event(image)])


def test_capturing_a_model_that_points_at_content_type_is_warned_about():
    found = model_problems("capture['notifications.Notification']", Notification, ())
    assert [(m.id, "'content_type_id'" in m.msg) for m in found] == [("cdc.W002", True)]
