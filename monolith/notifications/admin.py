from django.contrib import admin

from monolith.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["kind", "recipient", "subject", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["recipient", "subject"]
