from rest_framework import serializers

from monolith.cart.models import Cart, CartItem
from monolith.catalog.models import Product
from monolith.core.money import total
from monolith.promotions.services import voucher_reduction


class CartItemSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    name = serializers.CharField(source="product.name", read_only=True)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = CartItem
        fields = ["id", "product", "sku", "name", "quantity", "unit_price", "line_total"]
        read_only_fields = ["unit_price"]


class CartSerializer(serializers.ModelSerializer):
    items = CartItemSerializer(many=True, read_only=True)
    voucher = serializers.CharField(source="voucher.code", read_only=True, default=None)
    subtotal = serializers.SerializerMethodField()
    discount = serializers.SerializerMethodField()

    class Meta:
        model = Cart
        fields = ["id", "status", "items", "voucher", "subtotal", "discount"]

    def get_subtotal(self, cart) -> str:
        return str(total(item.line_total for item in cart.items.all()))

    def get_discount(self, cart) -> str:
        subtotal = total(item.line_total for item in cart.items.all())
        return str(voucher_reduction(cart.voucher, subtotal))


class AddItemSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=99, default=1)


class SetQuantitySerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=0, max_value=99)


class VoucherCodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
