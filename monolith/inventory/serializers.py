from rest_framework import serializers

from monolith.inventory.models import StockLevel, StockReservation, Warehouse


class WarehouseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Warehouse
        fields = ["id", "code", "name", "city", "priority"]


class StockLevelSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    warehouse = serializers.CharField(source="warehouse.code", read_only=True)
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = StockLevel
        fields = ["id", "product", "sku", "warehouse", "quantity", "reserved", "available"]


class ReservationSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number", read_only=True)

    class Meta:
        model = StockReservation
        fields = ["id", "order", "stock_level", "quantity", "status"]
