from django.contrib import admin

from monolith.reviews.models import Review


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["product", "customer", "rating", "verified_purchase", "is_approved"]
    list_filter = ["rating", "is_approved", "verified_purchase"]
    search_fields = ["product__sku", "title"]
    raw_id_fields = ["product", "customer"]
    actions = ["approve"]

    @admin.action(description="Approve selected reviews")
    def approve(self, request, queryset):
        queryset.update(is_approved=True)
