"""The route table: validated data, versioned stores, and the admin API that flips weights."""

from __future__ import annotations

from strangler.control.filestore import FileStore
from strangler.control.messages import Message, ValidationFailed
from strangler.control.store import RouteStore, Version


def open_store(location: str) -> RouteStore:
    """A FileStore for a path, a PostgresStore for a postgresql:// URL."""
    if location.startswith(("postgresql://", "postgres://")):
        from strangler.control.pgstore import PostgresStore

        return PostgresStore(location)
    return FileStore(location)


__all__ = ["FileStore", "Message", "RouteStore", "ValidationFailed", "Version", "open_store"]
