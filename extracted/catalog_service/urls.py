"""URL map of the catalog service: /healthz and the catalog's /api/v1 contract."""

from django.urls import include, path

from extracted.catalog_service.catalog.api import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("extracted.catalog_service.catalog.urls")),
]
