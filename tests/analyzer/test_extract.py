"""Facts from single files: what a reviewer would check by opening the file at the line."""

from strangler_analyzer.extract import extract_migration, extract_source
from strangler_analyzer.facts import Ref


def facts_of(source: str, module: str = "shop.orders.models", is_package: bool = False):
    return extract_source("orders/models.py", module, is_package, source.encode())


def test_relations_keep_every_way_of_naming_the_target_and_their_line():
    facts = facts_of(
        "from django.conf import settings\n"
        "from django.db import models\n"
        "from shop.catalog.models import Product\n"
        "\n"
        "class Order(models.Model):\n"
        "    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)\n"
        "    product = models.ForeignKey(\n"
        "        Product, on_delete=models.CASCADE)\n"
        "    parent = models.ForeignKey('self', null=True, on_delete=models.CASCADE)\n"
        "    tags = models.ManyToManyField('catalog.Tag')\n"
        "    class Meta:\n"
        "        app_label = 'sales'\n"
        "        db_table = 'sales_order'\n"
    )
    (order,) = [c for c in facts.classes if c.name == "Order"]
    assert order.line == 5
    assert order.bases == (Ref("name", "django.db.models.Model"),)
    assert dict(order.meta) == {"app_label": "sales", "db_table": "sales_order"}
    assert [(r.field, r.target, r.line) for r in order.relations] == [
        ("user", Ref("setting", "AUTH_USER_MODEL"), 6),
        ("product", Ref("name", "shop.catalog.models.Product"), 7),
        ("parent", Ref("model", "self"), 9),
        ("tags", Ref("model", "catalog.Tag"), 10),
    ]


def test_relative_imports_resolve_against_the_module():
    facts = facts_of(
        "from .models import Order\nfrom ..catalog import models as cm\n",
        module="shop.orders.views",
    )
    assert dict(facts.aliases) == {
        "Order": Ref("name", "shop.orders.models.Order"),
        "cm": Ref("name", "shop.catalog.models"),
    }


def test_orm_reads_writes_lookups_signals_tasks_and_raw_sql_are_found():
    facts = facts_of(
        "from shop.catalog.models import Product\n"
        "from shop.payments.tasks import charge\n"
        "from shop.orders.signals import order_placed\n"
        "def place(user):\n"
        "    Product.objects.filter(category__name='x').update(stock=0)\n"
        "    n = Product.objects.count()\n"
        "    charge.delay(1)\n"
        "    order_placed.send(sender=None)\n"
        "    cursor.execute('SELECT * FROM inventory_stock')\n"
        "    apps.get_model('inventory', name)\n",
        module="shop.orders.services",
    )
    uses = {(u.kind, u.target, u.line, u.scope, u.lookup) for u in facts.uses}
    product = Ref("name", "shop.catalog.models.Product")
    assert ("write", product, 5, "place", "") in uses
    assert ("lookup", product, 5, "place", "category__name") in uses
    assert ("read", product, 6, "place", "") in uses
    assert ("task_call", Ref("name", "shop.payments.tasks.charge"), 7, "place", "") in uses
    assert ("signal_send", Ref("name", "shop.orders.signals.order_placed"), 8, "place", "") in uses
    assert ("raw_sql", Ref("table", "inventory_stock"), 9, "place", "") in uses
    assert [(n.value, n.line) for n in facts.unresolved] == [
        ("get_model() with a computed app or model name", 10)
    ]


def test_receivers_tasks_endpoints_and_admin_registrations():
    facts = facts_of(
        "from django.db.models.signals import post_save\n"
        "from django.dispatch import receiver\n"
        "from celery import shared_task\n"
        "from django.urls import path\n"
        "from shop.orders.models import Order\n"
        "from shop.orders import views\n"
        "@receiver(post_save, sender=Order)\n"
        "def on_save(sender, **kw):\n"
        "    pass\n"
        "@shared_task(name='orders.ship')\n"
        "def ship(order_id):\n"
        "    pass\n"
        "urlpatterns = [path('o/<int:pk>/', views.OrderDetail.as_view())]\n"
        "admin.site.register(Order)\n",
        module="shop.orders.receivers",
    )
    (rec,) = facts.receivers
    assert (rec.signal, rec.sender, rec.handler, rec.line) == (
        Ref("name", "django.db.models.signals.post_save"),
        Ref("name", "shop.orders.models.Order"),
        "shop.orders.receivers.on_save",
        7,
    )
    assert [(t.qualname, t.name, t.line) for t in facts.tasks] == [
        ("shop.orders.receivers.ship", "orders.ship", 11)
    ]
    assert [(e.route, e.view, e.line) for e in facts.endpoints] == [
        ("o/<int:pk>/", Ref("name", "shop.orders.views.OrderDetail"), 13)
    ]
    assert ("admin", Ref("name", "shop.orders.models.Order"), 14) in {
        (u.kind, u.target, u.line) for u in facts.uses
    }


def test_a_file_that_does_not_parse_is_reported_with_its_line():
    facts = facts_of("x = 1\ny = = 2\nz = 3\n")
    assert facts.parse_error is not None
    assert facts.parse_error.line == 2
    assert facts.classes == ()


def test_python_312_syntax_parses_even_on_311():
    facts = facts_of(
        "type Pair[T] = tuple[T, T]\n\ndef first[T](x: list[T]) -> T:\n    return x[0]\n"
    )
    assert facts.parse_error is None


def test_migration_dependencies_are_read_with_lines():
    source = (
        b"class Migration(migrations.Migration):\n"
        b"    dependencies = [\n"
        b"        ('catalog', '0001_initial'),\n"
        b"        migrations.swappable_dependency(settings.AUTH_USER_MODEL),\n"
        b"    ]\n"
    )
    facts = extract_migration("orders/migrations/0002.py", "orders.migrations.0002", source)
    assert [(d.app, d.line) for d in facts.migration_deps] == [
        ("catalog", 3),
        ("", 4),  # swappable_dependency(settings.AUTH_USER_MODEL): the user model's app
    ]


def test_long_generated_expressions_are_read(monkeypatch):
    source = "ok = 1\nx = " + "+".join(["1"] * 1500) + "\n"
    assert facts_of(source).parse_error is None
    monkeypatch.setattr("strangler_analyzer.extract.RECURSION_LIMIT", 1000)
    facts = facts_of(source)  # past the limit: reported, not fatal
    assert facts.parse_error is not None
    assert "nested too deeply" in facts.parse_error.value


def test_a_model_bound_by_get_model_inside_a_function_is_resolved_there_only():
    # taiga-back style: Membership = apps.get_model(...) in a function, then its manager.
    source = """\
from django.apps import apps
def join(project, user):
    Membership = apps.get_model('projects', 'Membership')
    Membership.objects.create(project=project, user=user)
def other():
    Membership.objects.count()
"""
    facts = facts_of(source, module="taiga.projects.services")
    uses = {(u.kind, u.target, u.line, u.scope) for u in facts.uses}
    assert ("write", Ref("model", "projects.Membership"), 4, "join") in uses
    assert ("read", Ref("unknown", "Membership"), 6, "other") in uses


def test_a_byte_order_mark_is_not_part_of_the_first_lines_evidence():
    facts = extract_source(
        "orders/views.py", "shop.orders.views", False, b"\xef\xbb\xbffrom shop.catalog import x\n"
    )
    assert [(i.line, i.detail) for i in facts.imports] == [(1, "from shop.catalog import x")]


def test_a_chain_inside_parentheses_is_found_where_it_starts_not_at_the_parenthesis():
    facts = facts_of(
        "from shop.catalog.models import Product\n"
        "def sell():\n"
        "    rows = (\n"
        "        Product.objects\n"
        "        .filter(category__name='x')\n"
        "        .update(stock=0)\n"
        "    )\n"
        "    same = (Product.objects.count())\n"
        "    return rows, same\n",
        module="shop.orders.services",
    )
    uses = {(u.kind, u.line, u.lookup) for u in facts.uses}
    assert uses == {("write", 4, ""), ("lookup", 4, "category__name"), ("read", 8, "")}
    assert {u.line: u.detail for u in facts.uses}[4] == "Product.objects"
