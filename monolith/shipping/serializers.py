from rest_framework import serializers

from monolith.shipping.models import Shipment, ShippingMethod, TrackingEvent


class ShippingMethodSerializer(serializers.ModelSerializer):
    class Meta:
        model = ShippingMethod
        fields = ["id", "code", "name", "price", "estimated_days"]


class TrackingEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrackingEvent
        fields = ["status", "location", "created_at"]


class ShipmentSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number", read_only=True)
    method = serializers.CharField(source="method.code", read_only=True)
    warehouse = serializers.CharField(source="warehouse.code", read_only=True, default=None)
    events = TrackingEventSerializer(many=True, read_only=True)

    class Meta:
        model = Shipment
        fields = [
            "id",
            "order",
            "method",
            "warehouse",
            "status",
            "tracking_number",
            "address",
            "shipped_at",
            "delivered_at",
            "events",
        ]
