"""Bad STRANGLER_CDC configuration is reported whole, with stable ids, and refused at start."""

from __future__ import annotations

import os

import pytest
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from strangler.cdc.checks import check_settings, model_problems
from tests.cdc.harness import run


def ids(messages) -> list[str]:
    return sorted(m.id for m in messages)


def test_every_problem_is_reported_with_its_id():
    broken = {
        "captur": {},
        "capture": {
            "catalog.Prodcut": {},
            "catalog.Product": {"exclude": ["no_such_column"]},
        },
        "consume": {
            "mappings": {
                "catalog_product": {"model": "catalog.Product", "rename": {"name": "title"}},
                "catalog_thing": {"model": "catalog.Thing"},
                "catalog_category": {
                    "model": "catalog.Category",
                    "transform": {"name": "no.such.function"},
                },
            }
        },
    }
    with override_settings(STRANGLER_CDC=broken):
        messages = check_settings()
    assert ids(messages) == ["cdc.E001", "cdc.E002", "cdc.E003", "cdc.E004", "cdc.E005", "cdc.E007"]
    by_id = {m.id: m.msg for m in messages}
    assert "'catalog.Prodcut' is not an installed model" in by_id["cdc.E002"]
    assert "'no_such_column'" in by_id["cdc.E003"]
    assert "catalog.Product has no field 'title'" in by_id["cdc.E005"]


def test_a_malformed_setting_is_an_error_not_a_crash():
    with override_settings(STRANGLER_CDC={"capture": ["catalog.Product"], "relay": "fast"}):
        messages = check_settings()
    assert ids(messages) == ["cdc.E001"]
    assert "malformed" in messages[0].msg


def test_the_shipped_settings_are_valid():
    assert check_settings() == []


@pytest.mark.parametrize(
    "command",
    [["django", "cdc_consume"], ["strangler", "cdc", "consume"]],
    ids=["manage.py", "strangler-cli"],
)
def test_consumer_with_a_bad_mapping_refuses_to_start(tmp_path, command):
    result = run(
        command,
        {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.cdc.bad_service_settings",
            "CATALOG_VAR_DIR": str(tmp_path),
        },
        timeout=60,
    )
    assert result.returncode != 0
    assert "cdc.E004" in result.stderr and "catalog.Widget" in result.stderr
    assert "cdc.E005" in result.stderr and "'headline'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unmigrated_database_is_a_clear_error_not_a_traceback(tmp_path):
    result = run(
        ["strangler", "cdc", "--settings", "monolith.settings", "snapshot", "catalog_product"],
        {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "MONOLITH_VAR_DIR": str(tmp_path),
        },
        timeout=60,
    )
    assert result.returncode == 2
    assert "has `migrate` run for this project" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_binary_column_must_be_excluded_from_capture():
    with isolate_apps("monolith.catalog"):

        class Attachment(models.Model):
            name = models.CharField(max_length=20)
            content = models.BinaryField()

            class Meta:
                app_label = "catalog"

    where = "STRANGLER_CDC['capture']['catalog.Attachment']"
    messages = model_problems(where, Attachment, ())
    assert [(m.id, "'content'" in m.msg) for m in messages] == [("cdc.E009", True)]
    assert model_problems(where, Attachment, ("content",)) == []


@pytest.mark.parametrize(
    ("setting", "where", "key"),
    [
        (
            {"capture": {"catalog.Product": {"exlude": ["price"]}}},
            "STRANGLER_CDC['capture']['catalog.Product']",
            "exlude",
        ),
        ({"relay": {"batch_sise": 10}}, "STRANGLER_CDC['relay']", "batch_sise"),
        ({"topics": {"partition": 3}}, "STRANGLER_CDC['topics']", "partition"),
        ({"consume": {"max_atempts": 3}}, "STRANGLER_CDC['consume']", "max_atempts"),
        (
            {
                "consume": {
                    "mappings": {"catalog_product": {"model": "catalog.Product", "renam": {}}}
                }
            },
            "STRANGLER_CDC['consume']['mappings']['catalog_product']",
            "renam",
        ),
    ],
    ids=["capture", "relay", "topics", "consume", "mapping"],
)
def test_an_unknown_key_at_any_level_is_an_error_naming_it(setting, where, key):
    with override_settings(STRANGLER_CDC=setting):
        messages = check_settings()
    assert ids(messages) == ["cdc.E001"]
    assert messages[0].msg == f"{where} has unknown key {key!r}."
    assert messages[0].hint.startswith("Known keys: ")


def test_a_dropped_column_must_land_on_a_field():
    mapping = {"model": "catalog.Product", "drop": ["nmae"]}
    with override_settings(STRANGLER_CDC={"consume": {"mappings": {"catalog_product": mapping}}}):
        messages = check_settings()
    assert ids(messages) == ["cdc.E005"]
    assert "drops 'nmae'" in messages[0].msg


@pytest.mark.parametrize(
    ("section", "value"),
    [({"consume": {}}, 0), ({"consume": {}}, -5), ({"consume": {}}, "many"), ({"relay": {}}, 2.5)],
    ids=["zero", "negative", "text", "fraction"],
)
def test_a_batch_size_must_be_a_positive_integer(section, value):
    [(name, body)] = section.items()
    with override_settings(STRANGLER_CDC={name: {**body, "batch_size": value}}):
        messages = check_settings()
    assert [m.msg for m in messages] == [
        f"STRANGLER_CDC[{name!r}]['batch_size'] must be an integer of at least 1, not {value!r}."
    ]


def test_the_cli_refuses_a_typo_in_a_capture_option(tmp_path):
    settings = tmp_path / "typo_settings.py"
    settings.write_text(
        "from monolith.settings import *  # noqa: F403\n"
        "STRANGLER_CDC = {**STRANGLER_CDC, 'capture': {'catalog.Product': {'exlude': ['price']}}}\n"
    )
    result = run(
        ["strangler", "cdc", "--settings", "typo_settings", "triggers"],
        {
            **os.environ,
            "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}".rstrip(":"),
            "MONOLITH_VAR_DIR": str(tmp_path),
        },
        timeout=60,
    )
    assert result.returncode == 2
    assert "cdc.E001" in result.stderr and "'exlude'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_naive_time_zone_must_be_a_time_zone():
    setting = {
        "consume": {
            "mappings": {
                "catalog_product": {"model": "catalog.Product", "naive_time_zone": "Mars/Olympus"}
            }
        }
    }
    with override_settings(STRANGLER_CDC=setting):
        messages = check_settings()
    assert ids(messages) == ["cdc.E010"]
    assert "'Mars/Olympus', which is no time zone" in messages[0].msg


@pytest.mark.django_db
def test_local_datetimes_stored_without_an_offset_are_a_warning_naming_the_zone():
    # USE_TZ = False: Django stores TIME_ZONE's wall-clock time; where the column keeps no
    # offset (SQLite's), receivers read it as UTC, two hours off in a Berlin summer.
    with isolate_apps("monolith.catalog"):

        class Visit(models.Model):
            at = models.DateTimeField()

            class Meta:
                app_label = "catalog"

    where = "STRANGLER_CDC['capture']['catalog.Visit']"
    with override_settings(USE_TZ=False, TIME_ZONE="Europe/Berlin"):
        local = model_problems(where, Visit, ())
    with override_settings(USE_TZ=True, TIME_ZONE="Europe/Berlin"):
        aware = model_problems(where, Visit, ())
    from django.db import connection

    if connection.vendor == "sqlite":
        assert [m.id for m in local] == ["cdc.W003"]
        assert "'naive_time_zone': 'Europe/Berlin'" in (local[0].hint or "")
    else:  # timestamptz: every value carries its offset
        assert local == []
    assert aware == []
