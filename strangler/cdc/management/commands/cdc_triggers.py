"""`manage.py cdc_triggers`: (re)install the capture triggers of STRANGLER_CDC['capture']."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connections

from strangler.cdc import conf, triggers


class Command(BaseCommand):
    help = "(Re)install capture triggers; `migrate` does this too. Safe to run any time."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, database: str, **options: Any) -> None:
        tables = triggers.captured_tables(conf.current().capture)
        installed = triggers.install(connections[database], tables)
        for table in installed:
            self.stdout.write(f"capturing {table}")
