from django.contrib import admin

from monolith.reporting.models import DailySales


@admin.register(DailySales)
class DailySalesAdmin(admin.ModelAdmin):
    list_display = ["day", "orders", "items", "revenue", "refunded", "computed_at"]
    date_hierarchy = "day"
