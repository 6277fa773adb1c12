from django.db import IntegrityError, transaction
from django.db.models import Avg, Count
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from monolith.orders.models import Order, OrderLine
from monolith.reviews.models import Review
from monolith.reviews.serializers import ReviewSerializer


def bought(customer, product) -> bool:
    """Did this customer pay for this product at least once?"""
    return OrderLine.objects.filter(
        order__customer=customer,
        product=product,
        order__status__in=[Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED],
    ).exists()


class ReviewViewSet(viewsets.ModelViewSet):
    serializer_class = ReviewSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filterset_fields = ["product", "rating", "verified_purchase", "product__category"]
    ordering_fields = ["id", "rating", "created_at"]
    ordering = ["-id"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    queryset = Review.objects.none()  # lets the schema generator see the model

    def get_queryset(self):
        reviews = Review.objects.filter(is_approved=True).select_related("customer__user")
        if self.action == "destroy":
            return reviews.filter(customer__user=self.request.user)
        return reviews

    def perform_create(self, serializer):
        customer = self.request.user.customer
        product = serializer.validated_data["product"]
        try:
            with transaction.atomic():
                serializer.save(customer=customer, verified_purchase=bought(customer, product))
        except IntegrityError as error:
            raise ValidationError({"product": ["you already reviewed this product"]}) from error

    @action(detail=False, methods=["get"])
    def summary(self, request):
        """Average rating and count per product (`?product=` to pick one)."""
        rows = self.filter_queryset(self.get_queryset()).values("product", "product__sku")
        rows = rows.annotate(reviews=Count("id"), average=Avg("rating")).order_by("product")
        return Response(
            [
                {
                    "product": row["product"],
                    "sku": row["product__sku"],
                    "reviews": row["reviews"],
                    "average": round(float(row["average"]), 2),
                }
                for row in rows
            ]
        )
