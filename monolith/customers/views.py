from rest_framework import generics, permissions, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.response import Response

from monolith.core.permissions import OwnedByRequestUserMixin
from monolith.customers.models import Address
from monolith.customers.serializers import (
    AddressSerializer,
    CustomerSerializer,
    RegistrationSerializer,
)


class RegisterView(generics.GenericAPIView):
    """Create an account; the answer carries the API token to use from then on."""

    serializer_class = RegistrationSerializer
    permission_classes = [permissions.AllowAny]

    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = serializer.save()
        token, _ = Token.objects.get_or_create(user=customer.user)
        body = {"token": token.key, "customer": CustomerSerializer(customer).data}
        return Response(body, status=status.HTTP_201_CREATED)


class MeView(generics.RetrieveUpdateAPIView):
    serializer_class = CustomerSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_object(self):
        return self.request.user.customer


class AddressViewSet(OwnedByRequestUserMixin, viewsets.ModelViewSet):
    serializer_class = AddressSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["country", "is_default"]

    staff_sees_all = False

    def base_queryset(self):
        return Address.objects.all()

    def perform_create(self, serializer):
        serializer.save(customer=self.request.user.customer)
