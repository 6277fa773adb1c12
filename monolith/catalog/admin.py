from django.contrib import admin

from monolith.catalog.models import Category, Product, ProductAttribute, ProductImage


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0


class ProductAttributeInline(admin.TabularInline):
    model = ProductAttribute
    extra = 0


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "currency", "is_active", "category"]
    list_filter = ["is_active", "category"]
    search_fields = ["sku", "name"]
    list_select_related = ["category"]
    inlines = [ProductImageInline, ProductAttributeInline]
