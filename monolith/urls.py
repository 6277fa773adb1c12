"""URL map: /api/v1/ (each app's router), /admin/, /healthz, the OpenAPI schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from monolith.core.views import healthz

API_APPS = [
    "monolith.catalog.urls",
    "monolith.customers.urls",
    "monolith.cart.urls",
    "monolith.orders.urls",
    "monolith.inventory.urls",
    "monolith.payments.urls",
    "monolith.shipping.urls",
    "monolith.reviews.urls",
    "monolith.notifications.urls",
    "monolith.reporting.urls",
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="schema"),
    *[path("api/v1/", include(module)) for module in API_APPS],
]
