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
