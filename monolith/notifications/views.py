from rest_framework import permissions, viewsets

from monolith.notifications.models import Notification
from monolith.notifications.serializers import NotificationSerializer


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    """E-mails sent: staff see all, a customer sees those addressed to them."""

    serializer_class = NotificationSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["kind", "status"]

    def get_queryset(self):
        sent = Notification.objects.select_related("content_type")
        if getattr(self, "swagger_fake_view", False) or self.request.user.is_staff:
            return sent
        return sent.filter(recipient=self.request.user.email)
