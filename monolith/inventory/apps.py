from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "monolith.inventory"
    label = "inventory"

    def ready(self) -> None:
        from monolith.inventory import receivers  # noqa: F401  (connects the signal receivers)
