"""SQLite files that several processes open at once: the parity and runbook stores."""

from __future__ import annotations

import sqlite3
import time


def use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the connection's file to write-ahead logging, waiting up to `timeout` seconds for
    the other processes opening it: SQLite refuses that switch with SQLITE_BUSY at once, without
    the busy handler that covers every other statement."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
