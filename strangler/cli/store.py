"""The route store options every route-reading subcommand shares: --config, --database-url."""

from __future__ import annotations

import argparse
import os

from strangler.cli.errors import UsageError


def add_store_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="route table file (.toml or .json)")
    source.add_argument("--database-url", help="postgresql:// URL of the shared route store")


def store_location(args: argparse.Namespace) -> str:
    """--config, --database-url or $STRANGLER_ROUTES; UsageError when none is given."""
    location = args.config or args.database_url or os.environ.get("STRANGLER_ROUTES", "")
    if not location:
        raise UsageError(
            "no route store: pass --config FILE or --database-url URL (or set $STRANGLER_ROUTES)"
        )
    return str(location)
