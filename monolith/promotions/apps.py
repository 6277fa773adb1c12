from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "monolith.promotions"
    label = "promotions"

    def ready(self) -> None:
        from monolith.promotions import receivers  # noqa: F401  (connects the signal receivers)
