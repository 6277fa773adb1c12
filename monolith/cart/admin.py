from django.contrib import admin

from monolith.cart.models import Cart, CartItem


class CartItemInline(admin.TabularInline):
    model = CartItem
    extra = 0
    raw_id_fields = ["product"]


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "status", "voucher", "updated_at"]
    list_filter = ["status"]
    inlines = [CartItemInline]
