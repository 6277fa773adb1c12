"""Send one e-mail through Django's backend and record it against what it is about."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail

from monolith.notifications.models import Notification


def notify(about, kind: str, recipient: str, subject: str, body: str) -> Notification:
    """E-mail `recipient` and keep a Notification row pointing at `about` (any model)."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
        status = Notification.Status.SENT
    except OSError:
        status = Notification.Status.FAILED
    return Notification.objects.create(
        kind=kind,
        recipient=recipient,
        subject=subject,
        body=body,
        status=status,
        content_type=ContentType.objects.get_for_model(about),
        object_id=about.pk,
    )
