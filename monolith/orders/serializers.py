from rest_framework import serializers

from monolith.orders.models import Order, OrderLine, OrderStatusHistory


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["product", "sku", "name", "quantity", "unit_price", "line_total"]


class StatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderStatusHistory
        fields = ["from_status", "to_status", "note", "created_at"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    history = StatusChangeSerializer(many=True, read_only=True)
    shipping_method = serializers.SlugRelatedField(slug_field="code", read_only=True)
    voucher = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "currency",
            "subtotal",
            "discount_total",
            "shipping_total",
            "total",
            "voucher",
            "shipping_method",
            "shipping_address",
            "placed_at",
            "lines",
            "history",
        ]


class CheckoutSerializer(serializers.Serializer):
    address = serializers.IntegerField()
    shipping_method = serializers.CharField(max_length=20)
    payment_token = serializers.CharField(max_length=64)
