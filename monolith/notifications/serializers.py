from rest_framework import serializers

from monolith.notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    about = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "recipient", "subject", "status", "about", "created_at"]

    def get_about(self, notification) -> str:
        return f"{notification.content_type.app_label}.{notification.content_type.model}:" + str(
            notification.object_id
        )
