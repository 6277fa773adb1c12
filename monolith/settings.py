"""Settings of the reference shop, read from the environment (twelve-factor style).

Every knob has an embedded default so `python -m monolith.manage ...` works on a laptop with
nothing installed: SQLite for the database and the Celery broker, console e-mail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("MONOLITH_VAR_DIR", BASE_DIR.parent / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Read a yes/no environment variable ("1", "true", "yes", "on" are yes)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable into a list, dropping blanks."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def sqlite_url(filename: str) -> str:
    """URL of an SQLite file under VAR_DIR, creating the directory on first use."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{VAR_DIR / filename}"


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-dev-key-change-me-in-production")
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,monolith")
# Behind the strangler proxy: build absolute URLs (pagination links) from the host the client
# used, so monolith and extracted service answer the same links. Only behind a trusted proxy.
USE_X_FORWARDED_HOST = env_bool("DJANGO_USE_X_FORWARDED_HOST", default=False)

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
]
MONOLITH_APPS = [
    "monolith.core",
    "monolith.catalog",
    "monolith.customers",
    "monolith.promotions",
    "monolith.cart",
    "monolith.orders",
    "monolith.inventory",
    "monolith.payments",
    "monolith.shipping",
    "monolith.reviews",
    "monolith.notifications",
    "monolith.reporting",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + MONOLITH_APPS

MIDDLEWARE = [
    "monolith.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "monolith.urls"
WSGI_APPLICATION = "monolith.wsgi.application"
ASGI_APPLICATION = "monolith.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or sqlite_url("monolith.sqlite3"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tolerate the demo's concurrent writers (web server + seed + relay) on one file.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", str(VAR_DIR / "static"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "monolith.core.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 20,
    # Money stays a string in JSON even in hand-built report bodies (no float rounding).
    "DEFAULT_RENDERER_CLASSES": [
        "monolith.core.renderers.DecimalAsStringJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop monolith API",
    "DESCRIPTION": "The reference Django monolith that the strangler toolkit migrates.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# E-mail: console by default; tests swap in Django's locmem outbox automatically.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # filebased backend
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "shop@example.com")

# Celery: Redis in production, kombu's SQLAlchemy transport on an SQLite file on a laptop.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "sqla+" + sqlite_url(
    "celery-broker.sqlite3"
)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "monolith")
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "refresh-daily-sales": {"task": "reporting.refresh_daily_sales", "schedule": 15 * 60},
    "cancel-unpaid-orders": {"task": "orders.cancel_unpaid_orders", "schedule": 60 * 60},
    "dispatch-due-shipments": {"task": "shipping.dispatch_due_shipments", "schedule": 5 * 60},
}

PAYMENT_GATEWAY = os.environ.get("PAYMENT_GATEWAY", "monolith.payments.gateway.FakeGateway")

SHOP_CURRENCY = os.environ.get("SHOP_CURRENCY", "EUR")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Change-data capture (strangler.cdc, docs/cdc.md): triggers put every change of the catalog's
# tables into the outbox, in the writing transaction; `manage.py cdc_relay` publishes them.
INSTALLED_APPS += ["strangler.cdc"]
STRANGLER_CDC = {
    "kafka": {"bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")},
    "topic_prefix": "monolith.",
    "capture": {
        "catalog.Category": {},
        "catalog.Product": {},
        "catalog.ProductImage": {},
        "catalog.ProductAttribute": {},
    },
    # Reverse flow, after cut-over: the catalog service's writes come back into these tables
    # (`manage.py cdc_consume`); rows applied from there never produce outbox rows here.
    "consume": {
        "group_id": "monolith-from-catalog-service",
        "topic_prefix": "catalog-service.",
        "mappings": {
            table: {"model": f"catalog.{model}"}
            for table, model in [
                ("catalog_category", "Category"),
                ("catalog_product", "Product"),
                ("catalog_productimage", "ProductImage"),
                ("catalog_productattribute", "ProductAttribute"),
            ]
        },
        "dead_letter_topic": "monolith.dead-letters",
        # Extra KafkaConsumer options as JSON; production leaves this empty.
        "kafka_options": json.loads(os.environ.get("CDC_KAFKA_CONSUMER_OPTIONS") or "{}"),
    },
}
