"""Django wiring: system checks and trigger installation after `migrate`."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CdcConfig(AppConfig):
    name = "strangler.cdc"
    label = "strangler_cdc"
    verbose_name = "Change-data capture"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from strangler.cdc import checks, triggers

        checks.register()
        post_migrate.connect(triggers.install_after_migrate, dispatch_uid="strangler_cdc_triggers")
