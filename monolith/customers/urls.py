from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from monolith.customers.views import AddressViewSet, MeView, RegisterView

router = SimpleRouter(trailing_slash=False)
router.register("addresses", AddressViewSet, basename="address")
urlpatterns = [
    path("auth/token", obtain_auth_token, name="auth-token"),
    path("customers/register", RegisterView.as_view(), name="customer-register"),
    path("customers/me", MeView.as_view(), name="customer-me"),
    *router.urls,
]
