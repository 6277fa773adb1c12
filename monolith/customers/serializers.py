from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from rest_framework import serializers

from monolith.customers.models import Address, Customer


class AddressSerializer(serializers.ModelSerializer):
    class Meta:
        model = Address
        fields = ["id", "full_name", "line1", "line2", "city", "postcode", "country", "is_default"]


class CustomerSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    addresses = AddressSerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "username", "email", "phone", "loyalty_points", "addresses"]
        read_only_fields = ["loyalty_points"]


class RegistrationSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, validators=[validate_password])
    phone = serializers.CharField(max_length=32, required=False, default="")

    def validate_username(self, value: str) -> str:
        if get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("this username is taken")
        return value

    def create(self, validated_data):
        phone = validated_data.pop("phone")
        user = get_user_model().objects.create_user(**validated_data)
        customer = user.customer  # created by customers.receivers.create_profile
        customer.phone = phone
        customer.save(update_fields=["phone", "updated_at"])
        return customer
