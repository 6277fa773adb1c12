"""Errors the CLI turns into a one-line message and exit code 2, never a traceback."""


class UsageError(Exception):
    """Bad usage or bad input: the message says what was wrong, where, and what to do."""
