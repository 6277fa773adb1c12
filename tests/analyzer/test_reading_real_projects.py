"""Constructs of real projects that were misread: each case is a small project of real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler_analyzer.api import Options, analyze
from strangler_analyzer.extract import extract_migration, extract_source
from strangler_analyzer.project import resolve_project

SETTINGS = (
    "INSTALLED_APPS = ['django.contrib.auth', 'shop', 'shop.orders']\nROOT_URLCONF = 'shop.urls'\n"
)

# shop and shop.orders with a model each (an order refers to a customer), and shop.billing
THREE_APPS = {
    "shop/__init__.py": "",
    "shop/models.py": "from django.db import models\nclass Customer(models.Model):\n    pass\n",
    "shop/orders/__init__.py": "",
    "shop/orders/models.py": "from django.db import models\n"
    "class Order(models.Model):\n    customer = models.ForeignKey('shop.Customer', 0)\n",
    "shop/billing/__init__.py": "",
    "shop/billing/models.py": "from django.db import models\n"
    "class Invoice(models.Model):\n    pass\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def report_of(root: Path, tmp_path: Path) -> dict:
    return analyze(Options(path=str(root), cache_dir=str(tmp_path / "cache"))).report


def test_a_migration_with_no_dependencies_is_no_module_of_any_context():
    migration = extract_migration(
        "orders/migrations/0001_initial.py",
        "orders.migrations.0001_initial",
        b"class Migration:\n    dependencies = []\n    operations = []\n",
    )
    models = extract_source(
        "orders/models.py",
        "orders.models",
        False,
        b"from django.db import models\nclass Order(models.Model):\n    pass\n",
    )
    project = resolve_project([migration, models])
    assert not [e for e in project.edges if e.source == f"module:{migration.module}"]


@pytest.mark.parametrize(
    "source",
    [
        "from django.db import models\n"
        "class Median(models.Aggregate):\n"
        "    function = 'PERCENTILE_CONT'\n"
        "    output_field = models.FloatField()\n",
        "from tastypie import fields\n"
        "from tastypie.resources import ModelResource\n"
        "class OrderResource(ModelResource):\n"
        "    customer = fields.ForeignKey('api.CustomerResource', 'customer')\n",
    ],
    ids=["aggregate", "tastypie"],
)
def test_orm_expressions_and_api_resources_are_not_models(source):
    project = resolve_project(
        [extract_source("shop/models.py", "shop.models", False, source.encode())]
    )
    assert project.models == ()


def test_class_based_settings_and_apps_outside_installed_apps(tmp_path):
    root = write(
        tmp_path / "p",
        {
            "conf/__init__.py": "",
            "conf/settings.py": "from configurations import Configuration\n"
            "class Base(Configuration):\n"
            "    INSTALLED_APPS = ['django.contrib.auth', 'shop']\n"
            "class Dev(Base):\n"
            "    @property\n"
            "    def INSTALLED_APPS(self):\n"
            "        return super().INSTALLED_APPS + ['shop.orders']\n",
            **THREE_APPS,
        },
    )
    report = report_of(root, tmp_path)
    apps = {a["label"]: a for a in report["project"]["apps"]}
    assert apps["orders"]["installed"] and apps["shop"]["installed"]
    # billing is not installed: Django would not load it; once installed it is "billing".
    assert apps["billing"] == {"label": "billing", "name": "shop.billing", "installed": False}
    models = {m for c in report["contexts"] for m in c["models"]}
    assert {"billing.Invoice", "orders.Order", "shop.Customer"} <= models


def test_endpoints_carry_their_include_prefix_and_manager_guesses_are_said(tmp_path):
    root = write(
        tmp_path / "p",
        {
            "shop/__init__.py": "",
            "shop/settings.py": SETTINGS,
            "shop/urls.py": "from django.urls import include, path\n"
            "urlpatterns = [path('api/orders/', include('shop.orders.urls'))]\n",
            "shop/models.py": "from django.db import models\n"
            "class Customer(models.Model):\n    pass\n",
            "shop/orders/__init__.py": "",
            "shop/orders/urls.py": "from django.urls import path\nfrom . import views\n"
            "urlpatterns = [path('<int:pk>/', views.detail)]\n",
            "shop/orders/views.py": "from .models import Order\n"
            "def detail(request, pk):\n"
            "    return Order.objects.archive_old(pk)\n",
            "shop/orders/models.py": "from django.db import models\n"
            "class Order(models.Model):\n    customer = models.ForeignKey('shop.Customer', 0)\n",
        },
    )
    report = report_of(root, tmp_path)
    endpoints = [e for c in report["contexts"] for e in c["endpoints"]]
    assert endpoints == ["api/orders/<int:pk>/ -> shop.orders.views.detail (orders.Order)"]
    guessed = [u for u in report["stats"]["unresolved"] if "archive_old" in u["message"]]
    assert guessed == [
        {
            "file": "shop/orders/views.py",
            "line": 3,
            "message": "custom manager method archive_old() counted as a read: "
            "a guess from its name",
        }
    ]


def test_an_installed_appconfig_that_inherits_its_name_installs_the_app():
    # django-oscar: INSTALLED_APPS lists CatalogueConfig, whose name comes from its base.
    apps = extract_source(
        "shop/catalogue/apps.py",
        "shop.catalogue.apps",
        False,
        b"from django.apps import AppConfig\n"
        b"class CatalogueOnlyConfig(AppConfig):\n"
        b"    label = 'catalogue'\n"
        b"    name = 'shop.catalogue'\n"
        b"class CatalogueConfig(CatalogueOnlyConfig):\n"
        b"    pass\n",
    )
    settings = extract_source(
        "settings.py",
        "settings",
        False,
        b"INSTALLED_APPS = ['shop.catalogue.apps.CatalogueConfig']\n",
    )
    project = resolve_project([apps, settings])
    assert [(a.label, a.installed) for a in project.apps] == [("catalogue", True)]


def test_a_settings_property_returning_a_list_it_built_is_read(tmp_path):
    # readthedocs.org: `def INSTALLED_APPS(self): apps = [...]; apps.extend(...); return apps`
    root = write(
        tmp_path / "p",
        {
            "conf/__init__.py": "",
            "conf/settings.py": "class Base:\n"
            "    @property\n"
            "    def INSTALLED_APPS(self):\n"
            "        apps = ['django.contrib.auth', 'shop']\n"
            "        apps += ['shop.orders']\n"
            "        return apps\n",
            "conf/urls.py": "from django.urls import include, path\n"
            "urlpatterns = [path('orders/', include('shop.orders.urls'))]\n",
            "shop/orders/urls.py": "urlpatterns = []\n",
            **THREE_APPS,
        },
    )
    report = report_of(root, tmp_path)
    assert report["project"]["settings"] == ["conf.settings"]
    assert {w["module"] for w in report["project_wiring"]} >= {"conf.settings", "conf.urls"}
    installed = {a["label"]: a["installed"] for a in report["project"]["apps"]}
    assert installed == {"billing": False, "orders": True, "shop": True}
