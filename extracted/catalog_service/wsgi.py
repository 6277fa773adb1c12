"""WSGI entry point of the catalog service (gunicorn extracted.catalog_service.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "extracted.catalog_service.settings")
application = get_wsgi_application()
