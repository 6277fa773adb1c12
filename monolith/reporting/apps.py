from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "monolith.reporting"
    label = "reporting"

    def ready(self) -> None:
        from monolith.reporting import receivers  # noqa: F401  (connects the signal receivers)
