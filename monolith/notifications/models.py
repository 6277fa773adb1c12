"""Every message the shop sent, attached to whatever it was about (order, shipment, refund)."""

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from monolith.core.models import TimeStampedModel


class Notification(TimeStampedModel):
    class Status(models.TextChoices):
        SENT = "sent"
        FAILED = "failed"

    kind = models.CharField(max_length=40, db_index=True)
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SENT)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    subject_object = GenericForeignKey("content_type", "object_id")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["content_type", "object_id"])]
