from django_filters import rest_framework as filters
from rest_framework import permissions, viewsets

from monolith.inventory.models import StockLevel, Warehouse
from monolith.inventory.serializers import StockLevelSerializer, WarehouseSerializer


class StockFilter(filters.FilterSet):
    sku = filters.CharFilter(field_name="product__sku")
    warehouse = filters.CharFilter(field_name="warehouse__code")
    category = filters.NumberFilter(field_name="product__category_id")

    class Meta:
        model = StockLevel
        fields = ["product", "sku", "warehouse", "category"]


class StockLevelViewSet(viewsets.ReadOnlyModelViewSet):
    """Stock per product and warehouse (public: the storefront shows availability)."""

    queryset = StockLevel.objects.select_related("product", "warehouse")
    serializer_class = StockLevelSerializer
    permission_classes = [permissions.AllowAny]
    filterset_class = StockFilter
    ordering_fields = ["id", "quantity", "reserved"]
    ordering = ["id"]


class WarehouseViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Warehouse.objects.all()
    serializer_class = WarehouseSerializer
    permission_classes = [permissions.IsAdminUser]
