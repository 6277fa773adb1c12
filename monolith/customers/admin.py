from django.contrib import admin

from monolith.customers.models import Address, Customer


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["user", "phone", "loyalty_points", "marketing_opt_in"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    inlines = [AddressInline]
