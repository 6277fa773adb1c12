from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from monolith.core.permissions import OwnedByRequestUserMixin
from monolith.payments.models import Payment
from monolith.payments.serializers import (
    PaymentSerializer,
    RefundRequestSerializer,
    RefundSerializer,
)
from monolith.payments.services import PaymentError, refund_payment


class PaymentViewSet(OwnedByRequestUserMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PaymentSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "order__number"]

    owner_lookup = "order__customer__user"

    def base_queryset(self):
        return Payment.objects.select_related("order").prefetch_related("refunds")

    @action(
        detail=True,
        methods=["post"],
        permission_classes=[permissions.IsAdminUser],
        serializer_class=RefundRequestSerializer,
    )
    def refund(self, request, pk=None):
        """Refund all that is left (or `amount`); a full refund puts the stock back."""
        data = RefundRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            refund = refund_payment(self.get_object(), **data.validated_data)
        except PaymentError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)
