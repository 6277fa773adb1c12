from django.contrib import admin

from monolith.orders.models import Order, OrderLine, OrderStatusHistory


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["product"]


class OrderStatusHistoryInline(admin.TabularInline):
    model = OrderStatusHistory
    extra = 0
    readonly_fields = ["from_status", "to_status", "note", "changed_by", "created_at"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "total", "placed_at"]
    list_filter = ["status", "shipping_method"]
    search_fields = ["number", "customer__user__email"]
    list_select_related = ["customer__user"]
    inlines = [OrderLineInline, OrderStatusHistoryInline]
