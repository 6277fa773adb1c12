"""Catalog API: public reads, staff writes."""

from rest_framework import viewsets

from monolith.catalog.filters import CategoryFilter, ProductFilter
from monolith.catalog.models import Category, Product
from monolith.catalog.serializers import CategorySerializer, ProductSerializer
from monolith.core.permissions import IsStaffOrReadOnly


class CategoryViewSet(viewsets.ModelViewSet):
    queryset = Category.objects.all()
    serializer_class = CategorySerializer
    permission_classes = [IsStaffOrReadOnly]
    filterset_class = CategoryFilter
    search_fields = ["name", "slug"]
    ordering_fields = ["id", "name", "slug"]
    ordering = ["id"]


class ProductViewSet(viewsets.ModelViewSet):
    queryset = Product.objects.prefetch_related("images", "attributes")
    serializer_class = ProductSerializer
    permission_classes = [IsStaffOrReadOnly]
    filterset_class = ProductFilter
    search_fields = ["name", "sku", "description"]
    ordering_fields = ["id", "price", "name", "sku", "created_at"]
    ordering = ["id"]
