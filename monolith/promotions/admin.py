from django.contrib import admin

from monolith.promotions.models import Discount, Voucher


@admin.register(Voucher)
class VoucherAdmin(admin.ModelAdmin):
    list_display = ["code", "percent_off", "amount_off", "times_used", "max_uses", "valid_until"]
    search_fields = ["code"]


@admin.register(Discount)
class DiscountAdmin(admin.ModelAdmin):
    list_display = ["name", "percent_off", "is_active"]
    filter_horizontal = ["products", "categories"]
