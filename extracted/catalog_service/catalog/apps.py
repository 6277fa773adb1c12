from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "extracted.catalog_service.catalog"
    label = "catalog"
    verbose_name = "Catalog service"
    default_auto_field = "django.db.models.BigAutoField"
