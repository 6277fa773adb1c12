"""Checkout and order history."""

from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from monolith.cart.services import open_cart
from monolith.core.permissions import OwnedByRequestUserMixin
from monolith.inventory.services import InsufficientStock
from monolith.orders.checkout import checkout
from monolith.orders.models import Order
from monolith.orders.serializers import CheckoutSerializer, OrderSerializer
from monolith.orders.services import CheckoutError, cancel_order
from monolith.payments.models import Payment


class CheckoutView(APIView):
    """POST the open cart: 201 with the paid order, 402 if the card is declined, 409 on stock."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = CheckoutSerializer

    def post(self, request):
        data = CheckoutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = checkout(
                open_cart(request.user),
                request.user.customer,
                data.validated_data["address"],
                data.validated_data["shipping_method"],
                data.validated_data["payment_token"],
            )
        except InsufficientStock as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        except CheckoutError as error:
            raise ValidationError({"detail": str(error)}) from error
        body = OrderSerializer(result.order).data
        body["payment"] = {"id": result.payment.id, "status": result.payment.status}
        failed = result.payment.status == Payment.Status.FAILED
        return Response(body, status=402 if failed else status.HTTP_201_CREATED)


class OrderViewSet(OwnedByRequestUserMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = OrderSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "number"]
    ordering_fields = ["id", "placed_at", "total"]
    ordering = ["-id"]

    def base_queryset(self):
        orders = Order.objects.select_related("shipping_method", "voucher")
        return orders.prefetch_related("lines", "history")

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self.get_object()
        try:
            cancel_order(order, request.data.get("reason", "cancelled by customer"), request.user)
        except CheckoutError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(OrderSerializer(order).data)
