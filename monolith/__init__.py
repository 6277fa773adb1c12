"""The reference Django monolith ("shop") that the strangler toolkit migrates."""

from monolith.celery import app as celery_app

__all__ = ["celery_app"]
