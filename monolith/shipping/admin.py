from django.contrib import admin

from monolith.shipping.models import Shipment, ShippingMethod, TrackingEvent

admin.site.register(ShippingMethod)


class TrackingEventInline(admin.TabularInline):
    model = TrackingEvent
    extra = 0


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ["tracking_number", "order", "status", "method", "shipped_at"]
    list_filter = ["status", "method"]
    search_fields = ["tracking_number", "order__number"]
    raw_id_fields = ["order"]
    inlines = [TrackingEventInline]
