from django.apps import AppConfig


class ShippingConfig(AppConfig):
    name = "monolith.shipping"
    label = "shipping"

    def ready(self) -> None:
        from monolith.shipping import receivers  # noqa: F401  (connects the signal receivers)
