from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "monolith.core"
    label = "core"
    verbose_name = "Shared shop utilities"
