"""Django system checks for STRANGLER_CDC: every problem, with a stable id (docs/cdc.md)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core import checks
from django.db import connections, models

from strangler.cdc import conf, mapping, triggers
from strangler.cdc.generic import points_at_content_type

CHECK_TAG = "strangler_cdc"
CAPTURE_FACTS_TABLE = "strangler_cdc_captured"  # created by our migrations


def register() -> None:
    checks.register(check_settings, CHECK_TAG)
    checks.register(check_triggers, CHECK_TAG, checks.Tags.database)


def _error(id: str, msg: str, hint: str | None = None) -> checks.CheckMessage:
    level = checks.Warning if id.startswith("cdc.W") else checks.Error
    return level(msg, hint=hint, id=id, obj=conf.SETTING)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.conf import settings

    raw = getattr(settings, conf.SETTING, None)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [_error("cdc.E001", f"{conf.SETTING} must be a dict, not {type(raw).__name__}.")]
    found = [_error("cdc.E001", message, hint) for message, hint in conf.problems(raw)]
    try:
        parsed = conf.parse(raw)
    except (TypeError, ValueError, AttributeError) as error:
        # A number found wrong above is usually what could not be read: say it once.
        return found or [
            _error(
                "cdc.E001",
                f"{conf.SETTING} is malformed: {error}.",
                "Sections are dicts, lists are lists of names, numbers are numbers; "
                "see docs/cdc.md.",
            )
        ]
    for spec in parsed.capture:
        found += _capture_problems(spec)
    if parsed.consume is not None:
        for mapping_spec in parsed.consume.mappings:
            found += [_error(*problem) for problem in mapping.problems(mapping_spec)]
    if parsed.capture:
        vendor = connections["default"].vendor
        if vendor not in triggers.SUPPORTED_VENDORS:
            found.append(
                _error(
                    "cdc.E008",
                    f"Capture needs PostgreSQL or SQLite; the default database is {vendor}.",
                    "Capture is done by triggers; other databases are not supported yet.",
                )
            )
    return found


def _capture_problems(spec: conf.CaptureSpec) -> list[checks.CheckMessage]:
    where = f"{conf.SETTING}['capture'][{spec.model!r}]"
    try:
        model = apps.get_model(spec.model)
    except (LookupError, ValueError):
        return [
            _error(
                "cdc.E002",
                f"{where}: {spec.model!r} is not an installed model.",
                "Use 'app_label.ModelName' of a model in INSTALLED_APPS.",
            )
        ]
    return model_problems(where, model, spec.exclude)


def model_problems(
    where: str, model: type[models.Model], exclude: tuple[str, ...]
) -> list[checks.CheckMessage]:
    """What is wrong with capturing `model` without the `exclude` columns."""
    label = model._meta.label
    columns = {f.column for f in model._meta.concrete_fields}
    found = [
        _error(
            "cdc.E003",
            f"{where} excludes {name!r}, which is not a column of {label}.",
            f"Columns: {', '.join(sorted(columns))}.",
        )
        for name in exclude
        if name not in columns
    ]
    if model._meta.pk.column in exclude:
        found.append(_error("cdc.E003", f"{where} cannot exclude the primary key."))
    found += [
        _error(
            "cdc.W002",
            f"{where}: column {f.column!r} of {label} points at ContentType, whose ids differ "
            "between databases.",
            "Events carry (app_label, model) next to the id and the consumer writes the "
            "service's id for it, if the service's field is a ForeignKey to ContentType (an "
            "integer field would get the monolith's id: another model there). The generic "
            "relation's object ids must be rows the service has too.",
        )
        for f in model._meta.concrete_fields
        if points_at_content_type(f) and f.column not in exclude
    ]
    found += _naive_datetimes(where, model, exclude)
    found += [
        _error(
            "cdc.E009",
            f"{where}: column {f.column!r} of {label} is binary, which events cannot carry "
            "(SQLite's trigger would make every write fail; PostgreSQL's would send hex text).",
            f"Add {f.column!r} to 'exclude'.",
        )
        for f in model._meta.concrete_fields
        if f.get_internal_type() == "BinaryField" and f.column not in exclude
    ]
    return found


def _naive_datetimes(
    where: str, model: type[models.Model], exclude: tuple[str, ...]
) -> list[checks.CheckMessage]:
    """A warning when the model's datetimes are stored without an offset in a local time that
    receivers would read as UTC (USE_TZ = False, another TIME_ZONE; columns that are no
    timestamptz: SQLite's, a custom db_type)."""
    from django.conf import settings

    zone = settings.TIME_ZONE
    if settings.USE_TZ or zone in (None, "UTC"):
        return []
    connection = connections["default"]
    columns = [
        f.column
        for f in model._meta.concrete_fields
        if isinstance(f, models.DateTimeField)
        and f.column not in exclude
        and "with time zone" not in (f.db_type(connection) or "")
    ]
    if not columns:
        return []
    return [
        _error(
            "cdc.W003",
            f"{where}: {model._meta.label}'s {', '.join(columns)} are stored without an offset, "
            f"in this project's local time (USE_TZ = False, TIME_ZONE = {zone!r}); receivers "
            "read such datetimes as UTC.",
            f"Give the receivers' mappings of {model._meta.db_table} 'naive_time_zone': {zone!r}.",
        )
    ]


def check_triggers(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn when a captured table can be written without capture (no trigger installed)."""
    parsed = conf.current()
    if not parsed.capture or not databases or "default" not in databases:
        return []
    if check_settings():
        return []
    connection = connections["default"]
    if connection.vendor not in triggers.SUPPORTED_VENDORS:
        return []
    # Before `migrate` created them, tables cannot be written at all, and before it created
    # ours it has yet to install the triggers (the check runs at the start of that migrate):
    # nothing to warn about.
    existing = set(connection.introspection.table_names())
    if CAPTURE_FACTS_TABLE not in existing:
        return []
    present = triggers.tables_with_triggers(connection)
    return [
        _error(
            "cdc.W001",
            f"Captured table {table.table!r} has no capture trigger: its writes are not captured.",
            "Run `manage.py migrate` or `manage.py cdc_triggers` to install the triggers.",
        )
        for table in triggers.captured_tables(parsed.capture)
        if table.table in existing and table.table not in present
    ]
