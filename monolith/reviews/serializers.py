from rest_framework import serializers

from monolith.reviews.models import Review


class ReviewSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="customer.user.username", read_only=True)

    class Meta:
        model = Review
        fields = [
            "id",
            "product",
            "author",
            "rating",
            "title",
            "body",
            "verified_purchase",
            "created_at",
        ]
        read_only_fields = ["verified_purchase"]
