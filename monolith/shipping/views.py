from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from monolith.core.permissions import OwnedByRequestUserMixin
from monolith.shipping import services
from monolith.shipping.models import Shipment, ShippingMethod
from monolith.shipping.serializers import ShipmentSerializer, ShippingMethodSerializer


class ShippingMethodViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ShippingMethod.objects.filter(is_active=True)
    serializer_class = ShippingMethodSerializer
    permission_classes = [permissions.AllowAny]


class ShipmentViewSet(OwnedByRequestUserMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ShipmentSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "order__number"]

    owner_lookup = "order__customer__user"

    def base_queryset(self):
        shipments = Shipment.objects.select_related("order", "method", "warehouse")
        return shipments.prefetch_related("events")

    # Named `ship`: a method called `dispatch` would shadow APIView.dispatch.
    @action(
        detail=True,
        methods=["post"],
        url_path="dispatch",
        permission_classes=[permissions.IsAdminUser],
    )
    def ship(self, request, pk=None):
        """Hand the parcel to the carrier: the order ships and its reserved stock leaves."""
        shipment = self.get_object()
        if shipment.status != Shipment.Status.PENDING:
            detail = f"shipment {shipment.tracking_number} is {shipment.status}"
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        services.dispatch(shipment, location=request.data.get("location", ""))
        return Response(ShipmentSerializer(self.get_queryset().get(pk=shipment.pk)).data)
