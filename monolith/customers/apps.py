from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "monolith.customers"
    label = "customers"

    def ready(self) -> None:
        from monolith.customers import receivers  # noqa: F401  (connects the signal receivers)
