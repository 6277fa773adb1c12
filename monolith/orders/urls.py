from django.urls import path
from rest_framework.routers import SimpleRouter

from monolith.orders.views import CheckoutView, OrderViewSet

router = SimpleRouter(trailing_slash=False)
router.register("orders", OrderViewSet, basename="order")
urlpatterns = [path("checkout", CheckoutView.as_view(), name="checkout"), *router.urls]
