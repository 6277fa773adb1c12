from django.contrib import admin

from monolith.inventory.models import StockLevel, StockReservation, Warehouse

admin.site.register(Warehouse)


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    list_display = ["product", "warehouse", "quantity", "reserved"]
    list_filter = ["warehouse"]
    search_fields = ["product__sku", "product__name"]
    raw_id_fields = ["product"]


@admin.register(StockReservation)
class StockReservationAdmin(admin.ModelAdmin):
    list_display = ["order", "stock_level", "quantity", "status"]
    list_filter = ["status"]
    raw_id_fields = ["order", "stock_level"]
