from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "monolith.orders"
    label = "orders"

    def ready(self) -> None:
        from monolith.orders import receivers  # noqa: F401  (connects the signal receivers)
