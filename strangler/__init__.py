"""Strangle a Django monolith into services, one route and one table at a time."""

__version__ = "0.1.0"
