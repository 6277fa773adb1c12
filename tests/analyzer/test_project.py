"""Resolving facts across files: which classes are models, and where names really live."""

from strangler_analyzer.extract import extract_source
from strangler_analyzer.project import resolve_project


def facts(path: str, module: str, source: str, is_package: bool = False):
    return extract_source(path, module, is_package, source.encode())


def test_models_are_told_apart_from_forms_and_serializers():
    project = resolve_project(
        [
            facts(
                "blog/models.py",
                "blog.models",
                "from django.db import models\n"
                "from modelcluster.models import ClusterableModel\n"
                "from .base import Timestamped\n"
                "class Post(ClusterableModel):\n"
                "    title = models.CharField(max_length=10)\n"
                "class Note(Timestamped):\n"
                "    pass\n",
            ),
            facts(
                "blog/base.py",
                "blog.base",
                "from django.db import models\n"
                "class Timestamped(models.Model):\n"
                "    created = models.DateTimeField()\n"
                "    class Meta:\n"
                "        abstract = True\n",
            ),
            facts(
                "blog/forms.py",
                "blog.forms",
                "from django import forms\n"
                "from rest_framework import serializers\n"
                "class PostForm(forms.Form):\n"
                "    title = forms.CharField()\n"
                "class PostSerializer(serializers.Serializer):\n"
                "    title = serializers.CharField()\n",
            ),
        ]
    )
    assert [m.key for m in project.models] == ["blog.Note", "blog.Post"]
    assert {a.label for a in project.apps} == {"blog"}


def test_reexported_models_resolve_to_where_they_are_defined():
    project = resolve_project(
        [
            facts(
                "shop/orders/models/__init__.py",
                "shop.orders.models",
                "from .order import *\n",
                is_package=True,
            ),
            facts(
                "shop/orders/models/order.py",
                "shop.orders.models.order",
                "from django.db import models\nclass Order(models.Model):\n    pass\n",
            ),
            facts(
                "shop/billing/models.py",
                "shop.billing.models",
                "from django.db import models\n"
                "from shop.orders.models import Order\n"
                "class Invoice(models.Model):\n"
                "    order = models.ForeignKey(Order, on_delete=models.CASCADE)\n",
            ),
        ]
    )
    relations = [(e.source, e.target, e.line) for e in project.edges if e.kind == "relation"]
    assert relations == [("model:billing.Invoice", "model:orders.Order", 4)]


def test_installed_apps_built_from_named_lists_and_list_methods_are_read():
    # cookiecutter-django style split settings: DJANGO_APPS + LOCAL_APPS, then appends.
    project = resolve_project(
        [
            facts(
                "config/settings/base.py",
                "config.settings.base",
                "DJANGO_APPS = ['django.contrib.auth']\n"
                "LOCAL_APPS = ['shop.orders', 'shop.billing.apps.BillingConfig']\n"
                "LOCAL_APPS += ['shop.search']\n"
                "INSTALLED_APPS = DJANGO_APPS + LOCAL_APPS\n"
                "if True:\n"
                "    INSTALLED_APPS.append('shop.reports')\n"
                "INSTALLED_APPS.extend(['shop.audit'])\n"
                "INSTALLED_APPS.insert(0, 'shop.first')\n",
                is_package=False,
            ),
            facts(
                "config/settings/local.py",
                "config.settings.local",
                "from .base import *\nINSTALLED_APPS += ['shop.debugtools']\n",
            ),
            *(
                facts(f"shop/{name}/__init__.py", f"shop.{name}", "", is_package=True)
                for name in (
                    "orders",
                    "billing",
                    "search",
                    "reports",
                    "audit",
                    "first",
                    "debugtools",
                )
            ),
            facts(
                "shop/billing/apps.py",
                "shop.billing.apps",
                "from django.apps import AppConfig\n"
                "class BillingConfig(AppConfig):\n"
                "    name = 'shop.billing'\n"
                "    label = 'payments'\n",
            ),
        ]
    )
    assert {(a.label, a.name) for a in project.apps} == {
        ("orders", "shop.orders"),
        ("payments", "shop.billing"),
        ("search", "shop.search"),
        ("reports", "shop.reports"),
        ("audit", "shop.audit"),
        ("first", "shop.first"),
        ("debugtools", "shop.debugtools"),
    }
    assert project.settings_modules == ("config.settings.base", "config.settings.local")


def test_a_manager_call_on_a_variable_is_noted_as_unknown_not_as_a_missing_import():
    project = resolve_project(
        [
            facts(
                "shop/orders/models.py",
                "shop.orders.models",
                "from django.db import models\nclass Order(models.Model):\n    pass\n",
            ),
            facts(
                "shop/orders/utils.py",
                "shop.orders.utils",
                "def unique_slug(model, slug):\n"
                "    return model.objects.filter(slug=slug).exists()\n",
            ),
        ]
    )
    (note,) = [n for n in project.unresolved if n.file == "shop/orders/utils.py"]
    assert note.line == 2
    assert note.message.startswith("cannot tell which model model is: a variable or parameter")
    assert "not imported" not in note.message
