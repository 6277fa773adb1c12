from django.contrib import admin

from monolith.payments.models import Payment, Refund


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "amount", "status", "gateway", "captured_at"]
    list_filter = ["status", "gateway"]
    search_fields = ["order__number", "gateway_reference"]
    raw_id_fields = ["order"]
    inlines = [RefundInline]
