"""Settings of the catalog service, read from the environment.

Embedded default: an SQLite file under CATALOG_VAR_DIR. Production: CATALOG_DATABASE_URL
(its own PostgreSQL database), KAFKA_BOOTSTRAP_SERVERS, and, for `cdc_reconcile`, the
monolith's database as CDC_SOURCE_DATABASE_URL (read for comparison, written only to re-emit
events into its outbox).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("CATALOG_VAR_DIR", BASE_DIR.parent.parent / "var"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-catalog-dev-key")
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get(
        "DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,catalog-service"
    ).split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "django_filters",
    "strangler.cdc",
    "extracted.catalog_service.catalog",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "extracted.catalog_service.urls"
WSGI_APPLICATION = "extracted.catalog_service.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]


def _database(url: str | None, sqlite_file: str) -> dict:
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / sqlite_file}"
    config = dj_database_url.parse(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    return config


DATABASES = {
    "default": _database(os.environ.get("CATALOG_DATABASE_URL"), "catalog_service.sqlite3")
}
if os.environ.get("CDC_SOURCE_DATABASE_URL"):
    DATABASES["source"] = _database(os.environ["CDC_SOURCE_DATABASE_URL"], "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "extracted.catalog_service.catalog.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "PAGE_SIZE": 20,
    "UNAUTHENTICATED_USER": None,
}

SOURCE_TABLES = (
    "catalog_category",
    "catalog_product",
    "catalog_productimage",
    "catalog_productattribute",
)
STRANGLER_CDC = {
    "kafka": {"bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")},
    # Reverse flow (after cut-over): the service's own writes go out under this prefix.
    "topic_prefix": "catalog-service.",
    "capture": {
        "catalog.Category": {},
        "catalog.Product": {},
        "catalog.ProductImage": {},
        "catalog.ProductAttribute": {},
    },
    "consume": {
        "group_id": os.environ.get("CDC_GROUP_ID", "catalog-service"),
        "topic_prefix": "monolith.",
        "mappings": {
            "catalog_category": {"model": "catalog.Category"},
            "catalog_product": {"model": "catalog.Product"},
            "catalog_productimage": {"model": "catalog.ProductImage"},
            "catalog_productattribute": {"model": "catalog.ProductAttribute"},
        },
        "dead_letter_topic": "catalog-service.dead-letters",
        "max_attempts": int(os.environ.get("CDC_MAX_ATTEMPTS", "5")),
        "source_database": "source" if "source" in DATABASES else None,
        # Extra KafkaConsumer options as JSON (the embedded broker needs a short
        # session_timeout_ms; production leaves this empty).
        "kafka_options": json.loads(os.environ.get("CDC_KAFKA_CONSUMER_OPTIONS") or "{}"),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
