"""The catalog service's settings with a broken CDC mapping (for the start-up rejection test)."""

from extracted.catalog_service.settings import *  # noqa: F403
from extracted.catalog_service.settings import STRANGLER_CDC

STRANGLER_CDC = {
    **STRANGLER_CDC,
    "consume": {
        **STRANGLER_CDC["consume"],
        "mappings": {
            "catalog_product": {"model": "catalog.Product", "rename": {"title": "headline"}},
            "catalog_widget": {"model": "catalog.Widget"},
        },
    },
}
