"""The shopper's cart: /cart, /cart/items, /cart/voucher."""

from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from monolith.cart import services
from monolith.cart.models import CartItem
from monolith.cart.serializers import (
    AddItemSerializer,
    CartSerializer,
    SetQuantitySerializer,
    VoucherCodeSerializer,
)
from monolith.promotions.services import VoucherError, voucher_for_code


class CartMixin:
    permission_classes = [permissions.IsAuthenticated]

    def cart_response(self, cart, code=status.HTTP_200_OK) -> Response:
        cart = type(cart).objects.prefetch_related("items__product").get(pk=cart.pk)
        return Response(CartSerializer(cart).data, status=code)


class CartView(CartMixin, APIView):
    serializer_class = CartSerializer

    def get(self, request):
        return self.cart_response(services.open_cart(request.user))


class CartItemsView(CartMixin, APIView):
    serializer_class = AddItemSerializer

    def post(self, request):
        data = AddItemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cart = services.open_cart(request.user)
        try:
            services.add(cart, data.validated_data["product"], data.validated_data["quantity"])
        except services.CartError as error:
            raise ValidationError({"quantity": [str(error)]}) from error
        return self.cart_response(cart, status.HTTP_201_CREATED)


class CartItemView(CartMixin, APIView):
    serializer_class = SetQuantitySerializer

    def patch(self, request, pk: int):
        cart = services.open_cart(request.user)
        item = get_object_or_404(CartItem, pk=pk, cart=cart)
        data = SetQuantitySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.set_quantity(cart, item.product, data.validated_data["quantity"])
        except services.CartError as error:
            raise ValidationError({"quantity": [str(error)]}) from error
        return self.cart_response(cart)

    def delete(self, request, pk: int):
        cart = services.open_cart(request.user)
        get_object_or_404(CartItem, pk=pk, cart=cart).delete()
        return self.cart_response(cart)


class CartVoucherView(CartMixin, APIView):
    serializer_class = VoucherCodeSerializer

    def post(self, request):
        data = VoucherCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            voucher = voucher_for_code(data.validated_data["code"])
        except VoucherError as error:
            raise ValidationError({"code": [str(error)]}) from error
        cart = services.open_cart(request.user)
        cart.voucher = voucher
        cart.save(update_fields=["voucher", "updated_at"])
        return self.cart_response(cart)
