"""Runbooks: migration procedures as TOML data whose gates the toolkit checks, resumable.

Definitions (`definition`, `builtin`) are validated as a whole; gates (`gates`) are pure
functions over readings (`metrics`, `sources`); the engine (`engine`) persists every action
and gate evaluation in a run store (`store`: SQLite or PostgreSQL).
"""
