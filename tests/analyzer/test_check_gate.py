"""`--check` is a CI gate: one test per way a violation could pass with exit 0.

Each runs the real CLI on a copy of the fixture shop (plus the reference monolith for the lock
round trip), as a user's CI job would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.analyzer.conftest import appended_crossings, line_of
from tests.analyzer.test_analyze import cli

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = """from catalog.models import Product
from customers.models import Address
from inventory.models import Stock
from orders.models import Order
from payments.models import Payment


def overview():
    return [
        Product.objects.count(),
        Address.objects.count(),
        Stock.objects.count(),
        Order.objects.count(),
        Payment.objects.count(),
    ]
"""
APPS = ("catalog", "customers", "inventory", "orders", "payments")


def per_app_rules(depends: dict[str, list[str]], extra: str = "") -> str:
    """One context per app; ``depends`` gives the contexts that declare depends_on."""
    text = extra
    for app in APPS:
        text += f'[[context]]\nname = "{app}"\napps = ["{app}"]\n'
        if app in depends:
            text += f"depends_on = {json.dumps(depends[app])}\n"
    return text


def no_broken(shop: Path) -> Path:
    (shop / "payments" / "broken.py").unlink()
    return shop


def test_an_omnipresent_module_still_answers_for_its_crossings(shop, tmp_path):
    no_broken(shop)
    (shop / "catalog" / "dashboard.py").write_text(DASHBOARD)
    rules = tmp_path / "b.toml"
    # catalog may depend on nothing; the dashboard reads five apps, enough to be omnipresent.
    rules.write_text(per_app_rules({"catalog": []}, "[clustering]\nomnipresent_min_apps = 5\n"))
    report = json.loads(cli(str(shop), "--json", "--boundaries", str(rules), "--no-cache").stdout)
    assert [u["module"] for u in report["omnipresent"]] == ["catalog.dashboard"]
    result = cli(str(shop), "--check", str(rules), "--no-cache", "--json")
    assert result.returncode == 1, result.stdout
    found = json.loads(result.stdout)["violations"]
    targets = {d["target"] for d in found if d.get("via") == "catalog.dashboard"}
    assert targets == {"customers", "inventory", "orders", "payments"}
    assert all(d["source"] == "catalog" for d in found)


def test_a_file_that_does_not_parse_fails_the_check_unless_excluded(shop, tmp_path):
    rules = tmp_path / "b.toml"
    rules.write_text(per_app_rules({app: list(APPS) for app in APPS}))
    (shop / "orders" / "late.py").write_text(
        "from payments.models import Payment\n\nbroken = = Payment.objects.create()\n"
    )
    result = cli(str(shop), "--check", str(rules), "--no-cache")
    assert result.returncode == 1
    assert "orders/late.py:3" in result.stdout and "payments/broken.py:5" in result.stdout
    excluded = cli(
        str(shop), "--check", str(rules), "--no-cache", "--exclude", "*/late.py",
        "--exclude", "payments/broken.py",
    )  # fmt: skip
    assert excluded.returncode == 0, excluded.stdout


def test_a_syntax_error_in_a_models_file_is_named_not_blamed_on_the_toml(shop, tmp_path):
    models = shop / "payments" / "models.py"
    models.write_text(models.read_text() + "\nclass Refund(models.Model:\n    pass\n")
    rules = tmp_path / "b.toml"
    rules.write_text('[[context]]\nname = "money"\nmodels = ["payments.Payment"]\n')
    result = cli(str(shop), "--boundaries", str(rules), "--no-cache")
    assert result.returncode == 2
    assert "boundaries.E005" in result.stderr
    line = models.read_text().splitlines().index("class Refund(models.Model:") + 1
    assert f"payments/models.py:{line}" in result.stderr and "does not parse" in result.stderr


@pytest.mark.parametrize("project", ["shop", "monolith"])
def test_lock_then_check_passes_unchanged_and_fails_on_a_new_crossing(project, shop, tmp_path):
    root = no_broken(shop) if project == "shop" else REPO / "monolith"
    lock = tmp_path / "boundaries.toml"
    locked = cli(str(root), "--lock", str(lock), "--no-cache")
    assert locked.returncode == 0, locked.stderr
    assert "do not parse" not in locked.stdout
    assert lock.read_text().count("[[context]]") >= 5
    again = cli(str(root), "--check", str(lock), "--no-cache")
    assert again.returncode == 0, again.stdout  # the unchanged tree passes
    if project == "monolith":
        return
    # A new module of inventory writing payments, a context inventory never depended on.
    (shop / "inventory" / "refunds.py").write_text(
        "from payments.models import Payment\n\n\ndef refund():\n"
        "    Payment.objects.create(amount=1)\n"
    )
    crossed = cli(str(shop), "--check", str(lock), "--no-cache")
    assert crossed.returncode == 1, crossed.stdout
    assert "inventory/refunds.py:5" in crossed.stdout


def test_a_module_only_the_shared_kernel_uses_is_locked_and_the_unchanged_tree_passes(shop):
    # common.money is a shared kernel (four apps import it); common.errors is used by it
    # alone (django-oscar's oscar.core.exceptions). Clustered without the kernel, it was in
    # no context, so the lock did not pin it and --check on the unchanged tree exited 1.
    no_broken(shop)
    (shop / "common").mkdir()
    (shop / "common" / "__init__.py").write_text("")
    (shop / "common" / "errors.py").write_text("class Invalid(ValueError):\n    pass\n")
    (shop / "common" / "money.py").write_text(
        "from common.errors import Invalid\n\n\ndef cents(value):\n"
        "    if value < 0:\n        raise Invalid(value)\n    return int(value * 100)\n"
    )
    for path in (
        "catalog/views.py",
        "customers/admin.py",
        "inventory/reports.py",
        "orders/views.py",
    ):
        (shop / path).write_text((shop / path).read_text() + "\nfrom common.money import cents\n")
    report = json.loads(cli(str(shop), "--json", "--no-cache").stdout)
    assert [k["module"] for k in report["shared_kernel"]] == ["common.money"]
    placed = {m for c in report["contexts"] for m in c["modules"]}
    assert "common.errors" in placed
    lock = shop.parent / "boundaries.toml"
    assert cli(str(shop), "--lock", str(lock), "--no-cache").returncode == 0
    assert "common.errors" in lock.read_text()
    again = cli(str(shop), "--check", str(lock), "--no-cache")
    assert again.returncode == 0, again.stdout


def test_an_app_configured_on_a_third_party_appconfig_is_gated_under_its_label(shop):
    # wagtail.search: class WagtailSearchAppConfig(ModelSearchAppConfig), label "wagtailsearch".
    # Its base is not in the tree, so the class was not read as an AppConfig: the app was
    # labelled "search", its table search_indexentry, and a relation to
    # "wagtailsearch.IndexEntry" or SQL on wagtailsearch_indexentry crossed nothing.
    no_broken(shop)
    (shop / "search").mkdir()
    (shop / "search" / "__init__.py").write_text("")
    (shop / "search" / "apps.py").write_text(
        "from modelsearch.apps import ModelSearchAppConfig\n\n\n"
        'class SearchConfig(ModelSearchAppConfig):\n    name = "search"\n'
        '    label = "wagtailsearch"\n'
    )
    (shop / "search" / "models.py").write_text(
        "from django.db import models\n\n\nclass IndexEntry(models.Model):\n"
        "    title = models.CharField(max_length=10)\n"
    )
    settings = shop / "shop" / "settings.py"
    settings.write_text(
        settings.read_text().replace('    "payments",\n', '    "payments",\n    "search",\n')
    )
    lock = shop.parent / "boundaries.toml"
    assert cli(str(shop), "--lock", str(lock), "--no-cache").returncode == 0
    assert '"wagtailsearch.IndexEntry"' in lock.read_text()
    assert cli(str(shop), "--check", str(lock), "--no-cache").returncode == 0
    models = shop / "catalog" / "models.py"
    models.write_text(
        models.read_text() + "\n\nclass Hit(models.Model):\n"
        '    entry = models.ForeignKey("wagtailsearch.IndexEntry", on_delete=models.CASCADE)\n'
    )
    result = cli(str(shop), "--check", str(lock), "--no-cache", "--json")
    assert result.returncode == 1, result.stdout
    found = json.loads(result.stdout)["violations"]
    assert [(d["source"], d["target"], d["kind"]) for d in found] == [
        ("catalog", "wagtailsearch", "relation")
    ]


def test_every_problem_in_the_file_is_listed_with_its_line(shop, tmp_path):
    rules = tmp_path / "b.toml"
    rules.write_text(
        "[clustering]\n"
        "seed = 'x'\n"  # line 2: E008
        "[[context]]\n"
        'name = "a"\n'
        'apps = ["orders", "billing"]\n'  # line 5: E005 (no billing app)
        "colour = 1\n"  # line 6: E002
        "[[context]]\n"
        'name = "b"\n'
        'apps = ["orders"]\n'  # line 9: E006 (orders pinned to a and b)
        "[[together]]\n"
        'items = ["catalog", "payments"]\n'
        "[[context]]\n"
        'name = "c"\n'
        'apps = ["catalog"]\n'
        "[[context]]\n"
        'name = "d"\n'
        'apps = ["payments"]\n'  # together joins c and d: E007 at line 11
        "[[apart]]\n"
        'items = ["inventory", "inventory.Stock"]\n'  # line 19: E007, an item apart from itself
    )
    result = cli(str(shop), "--boundaries", str(rules), "--no-cache", "--json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    problems = json.loads(result.stdout)["problems"]
    found = sorted((p["id"], p["line"]) for p in problems)
    assert found == [
        ("boundaries.E002", 6),
        ("boundaries.E005", 5),
        ("boundaries.E006", 9),
        ("boundaries.E007", 11),
        ("boundaries.E007", 19),
        ("boundaries.E008", 2),
    ]
    text = cli(str(shop), "--boundaries", str(rules), "--no-cache")
    assert f"{rules}:5: boundaries.E005" in text.stderr and "6 problems" in text.stderr


def test_a_model_pin_wins_over_its_apps_pin_and_no_context_vanishes(shop, tmp_path):
    rules = tmp_path / "b.toml"
    rules.write_text(
        '[[context]]\nname = "ordering"\napps = ["orders"]\n'
        '[[context]]\nname = "lines"\nmodels = ["orders.OrderLine"]\n'
    )
    result = json.loads(cli(str(shop), "--boundaries", str(rules), "--no-cache", "--json").stdout)
    contexts = {c["name"]: c["models"] for c in result["contexts"]}
    assert "orders.Order" in contexts["ordering"]
    assert "orders.OrderLine" in contexts["lines"]
    assert "orders.OrderLine" not in contexts["ordering"]


def test_a_check_file_without_depends_on_says_it_checks_nothing(shop, tmp_path):
    rules = tmp_path / "b.toml"
    for text in ("", '[[context]]\nname = "x"\napps = ["orders"]\n'):
        rules.write_text(text)
        result = cli(str(shop), "--check", str(rules), "--no-cache")
        assert result.returncode == 2
        assert "boundaries.E011" in result.stderr and "check nothing" in result.stderr


def test_modules_are_pinned_by_glob_and_a_glob_matching_nothing_is_an_error(shop, tmp_path):
    rules = tmp_path / "b.toml"
    rules.write_text(
        '[[context]]\nname = "payments"\napps = ["payments"]\nmodules = ["orders.serv*"]\n'
        '[[context]]\nname = "ordering"\napps = ["orders"]\n'
    )
    report = json.loads(cli(str(shop), "--json", "--boundaries", str(rules), "--no-cache").stdout)
    placed = {m: c["name"] for c in report["contexts"] for m in c["modules"]}
    assert placed["orders.services"] == "payments"  # the glob wins over the orders app
    assert placed["orders.views"] == "ordering"
    rules.write_text('[[context]]\nname = "payments"\nmodules = ["billing.*"]\n')
    result = cli(str(shop), "--boundaries", str(rules), "--no-cache")
    assert result.returncode == 2 and f"{rules}:3: boundaries.E010" in result.stderr


def test_lock_warns_that_files_which_do_not_parse_will_fail_the_check(shop, tmp_path):
    lock = tmp_path / "boundaries.toml"
    locked = cli(str(shop), "--lock", str(lock), "--no-cache")
    assert locked.returncode == 0 and lock.exists()
    assert "1 file does not parse (payments/broken.py:5...)" in locked.stdout


# Ways a Django developer writes a dependency without importing the other app's code: each
# is added to catalog, a context that depends on nothing in the locked shop, so each must fail
# the gate. (path, text) per case; a path already in the shop gets the text appended.
CROSSINGS = {
    "include() of another app's URLconf by name": (
        "catalog/urls.py",
        "from django.urls import include, path\n\n"
        'urlpatterns = [path("pay/", include("payments.urls"))]\n',
    ),
    "include() of a (URLconf, app_name) pair": (
        "catalog/urls.py",
        "from django.urls import include, path\n\n"
        'urlpatterns = [path("pay/", include(("payments.urls", "payments"), namespace="p"))]\n',
    ),
    "a ForeignKey imported under another name": (
        "catalog/models.py",
        "\n\nfrom django.db.models import ForeignKey as Key\n\n\nclass Wish(models.Model):\n"
        '    order = Key("orders.Order", on_delete=models.CASCADE)\n',
    ),
    "a GenericRelation to another app's model": (
        "catalog/models.py",
        "\n\nfrom django.contrib.contenttypes.fields import GenericRelation\n\n\n"
        'class Wish(models.Model):\n    payments = GenericRelation("payments.Payment")\n',
    ),
    "a ManyToManyField through another app's model": (
        "catalog/models.py",
        "\n\nclass Wish(models.Model):\n"
        '    products = models.ManyToManyField(Product, through="orders.OrderLine")\n',
    ),
    "apps.get_model(settings.AUTH_USER_MODEL)": (
        "catalog/views.py",
        "\n\nfrom django.apps import apps\nfrom django.conf import settings\n\n\n"
        "def buyers():\n    return apps.get_model(settings.AUTH_USER_MODEL).objects.count()\n",
    ),
    "apps.get_model() with keyword arguments": (
        "catalog/views.py",
        "\n\nfrom django.apps import apps\n\n\ndef paid():\n"
        '    return apps.get_model(app_label="payments", model_name="Payment")\n',
    ),
    "get_model() on apps.get_app_config()": (
        "catalog/views.py",
        "\n\nfrom django.apps import apps\n\n\ndef paid():\n"
        '    return apps.get_app_config("payments").get_model("Payment")\n',
    ),
    "a get_app_config() model bound to a name, then a write": (
        "catalog/views.py",
        "\n\nfrom django.apps import apps\n\n"
        'Payment = apps.get_app_config("payments").get_model(model_name="Payment")\n\n\n'
        "def void():\n    Payment.objects.update(amount=0)\n",
    ),
    "User = apps.get_model(settings.AUTH_USER_MODEL), then a write": (
        "catalog/views.py",
        "\n\nfrom django.apps import apps\nfrom django.conf import settings\n\n"
        "User = apps.get_model(settings.AUTH_USER_MODEL)\n\n\n"
        'def sign_up():\n    return User.objects.create(username="x")\n',
    ),
    "a Celery signature of another app's task by name": (
        "catalog/views.py",
        "\n\nfrom celery import signature\n\n\n"
        'def charge_later():\n    signature("payments.charge", args=[1]).delay()\n',
    ),
    "app.signature() of another app's task by name": (
        "catalog/views.py",
        "\n\nfrom celery import current_app\n\n\n"
        'def charge_later():\n    current_app.signature("payments.charge").apply_async()\n',
    ),
    "raw SQL on another app's table in an f-string": (
        "catalog/views.py",
        "\n\nfrom django.db import connection\n\n\ndef void(pk):\n"
        "    with connection.cursor() as cursor:\n"
        '        cursor.execute(f"UPDATE payments_payment SET amount = 0 WHERE id = {pk}")\n',
    ),
    "raw SQL on another app's table held in a module constant": (
        "catalog/views.py",
        '\n\nfrom django.db import connection\n\nVOID = "DELETE FROM payments_payment"\n\n\n'
        "def void():\n    with connection.cursor() as cursor:\n        cursor.execute(VOID)\n",
    ),
    "raw SQL on another app's table in a local variable, %-formatted": (
        "catalog/views.py",
        "\n\nfrom django.db import connection\n\n\ndef void(pk):\n"
        '    sql = "DELETE FROM payments_payment WHERE id = %s"\n'
        "    with connection.cursor() as cursor:\n        cursor.execute(sql % pk)\n",
    ),
    "prefetch_related() through another app's rows by their default accessor": (
        "catalog/views.py",
        '\n\ndef ordered():\n    return Product.objects.prefetch_related("orderline_set__order")\n',
    ),
    "a lookup across another app's relation inside Q()": (
        "catalog/views.py",
        "\n\nfrom django.db.models import Q\n\n\ndef placed():\n"
        '    return Product.objects.filter(Q(orderline__order__status="placed") | Q(pk=1))\n',
    ),
    "Sum() across another app's relations in annotate()": (
        "catalog/views.py",
        "\n\nfrom django.db.models import Sum\n\n\ndef paid():\n"
        '    return Product.objects.annotate(paid=Sum("orderline__order__payment__amount"))\n',
    ),
    "Count() across another app's relations in aggregate()": (
        "catalog/views.py",
        "\n\nfrom django.db.models import Count\n\n\ndef paid():\n"
        '    return Product.objects.aggregate(n=Count("orderline__order__payment"))\n',
    ),
    "F() across another app's relations as a filter() value": (
        "catalog/views.py",
        "\n\nfrom django.db.models import F\n\n\ndef paid():\n"
        '    return Product.objects.filter(price=F("orderline__order__payment__amount"))\n',
    ),
    "F().desc() across another app's relations in order_by()": (
        "catalog/views.py",
        "\n\nfrom django.db.models import F\n\n\ndef paid():\n"
        '    return Product.objects.order_by(F("orderline__order__payment__amount").desc())\n',
    ),
    "a relation field class of the project's own, built on ForeignKey": (
        "catalog/models.py",
        "\n\nclass OrderKey(models.ForeignKey):\n    pass\n\n\nclass Wish(models.Model):\n"
        '    order = OrderKey("orders.Order", on_delete=models.CASCADE)\n',
    ),
    "call_command() of another app's management command": (
        "catalog/views.py",
        "\n\nfrom django.core.management import call_command\n\n\n"
        'def resync():\n    call_command("resync_payments", verbosity=0)\n',
    ),
}


@pytest.mark.parametrize("case", sorted(CROSSINGS))
def test_a_new_crossing_written_without_an_import_fails_the_locked_check(case, locked_shop):
    shop, lock = locked_shop
    path, text = CROSSINGS[case]
    target = shop / path
    before = target.read_text() if target.exists() else ""
    target.write_text(before + text)
    result = cli(str(shop), "--check", str(lock), "--no-cache", "--json")
    assert result.returncode == 1, result.stdout
    found = json.loads(result.stdout)["violations"]
    assert any(
        d["source"] == "catalog" and any(e["file"] == path for e in d["evidence"]) for d in found
    ), found


def test_a_lookup_by_a_related_name_django_formats_fails_the_locked_check(locked_shop):
    # related_name="%(app_label)s_%(class)s_related" on an abstract base is formatted per
    # concrete model (orders_wish_related): read as written, the lookup named no relation.
    shop, lock = locked_shop
    with (shop / "orders" / "models.py").open("a") as models:
        models.write(
            "\n\nclass Tracked(models.Model):\n"
            '    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE,\n'
            '                                related_name="%(app_label)s_%(class)s_related")\n\n'
            "    class Meta:\n        abstract = True\n\n\nclass Wish(Tracked):\n    pass\n"
        )
    code, found = appended_crossings(
        shop, lock, "catalog/views.py",
        "\n\ndef wished():\n    return Product.objects.filter(orders_wish_related__id=1)\n",
    )  # fmt: skip
    assert code == 1
    assert [f["crossing"][:2] for f in found] == [("catalog", "orders")], found


def test_what_the_check_left_out_is_said_even_when_it_passes(locked_shop):
    # A crossing in a file named like a test (a pytest `*_test.py`) is not read without
    # --include-tests: the pass must say so, not look like every file was checked.
    shop, lock = locked_shop
    (shop / "catalog" / "sync_test.py").write_text(
        "from payments.models import Payment\n\n\ndef void():\n"
        "    Payment.objects.update(amount=0)\n"
    )
    result = cli(str(shop), "--check", str(lock), "--no-cache")
    assert result.returncode == 0, result.stdout
    assert "left out (paths in --json): tests (use --include-tests): 1" in result.stdout
    as_json = json.loads(cli(str(shop), "--check", str(lock), "--no-cache", "--json").stdout)
    assert as_json["skipped"] == [
        {"path": "catalog/sync_test.py", "reason": "tests (use --include-tests)"}
    ]
    assert cli(str(shop), "--check", str(lock), "--no-cache", "--include-tests").returncode == 1


def test_an_apps_own_settings_module_leaves_the_apps_code_checked(locked_shop):
    # A module of a business app that defines INSTALLED_APPS (its defaults, or standalone test
    # settings) made the app's package, urls and celery modules "project wiring", in no
    # context: their crossings passed the check unseen.
    shop, lock = locked_shop
    (shop / "catalog" / "settings.py").write_text('INSTALLED_APPS = ["catalog"]\n')
    code, found = appended_crossings(
        shop, lock, "catalog/__init__.py",
        "\n\ndef charge():\n    from payments.models import Payment\n\n"
        "    return Payment.objects.create(amount=1)\n",
    )  # fmt: skip
    assert code == 1
    assert ("catalog", "payments") in [f["crossing"][:2] for f in found], found


NEW_APP_MODELS = (
    "from django.db import models\n\n\nclass Refund(models.Model):\n"
    '    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT)\n'
    '    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT)\n'
)


def test_a_new_app_that_only_clustering_placed_fails_the_locked_check(locked_shop):
    # A new app joins whichever context it uses most, so its dependencies on that context
    # were never a crossing: the gate must ask where it belongs instead of passing.
    shop, lock = locked_shop
    (shop / "refunds").mkdir()
    (shop / "refunds" / "__init__.py").write_text("")
    (shop / "refunds" / "models.py").write_text(NEW_APP_MODELS)
    settings = shop / "shop" / "settings.py"
    settings.write_text(
        settings.read_text().replace('    "payments",\n', '    "payments",\n    "refunds",\n')
    )

    result = cli(str(shop), "--check", str(lock), "--no-cache", "--json")

    assert result.returncode == 1, result.stdout
    unpinned = json.loads(result.stdout)["unpinned"]
    assert [u["models"] for u in unpinned] == [["refunds.Refund"]]
    text = cli(str(shop), "--check", str(lock), "--no-cache").stdout
    assert "model refunds.Refund" in text and "pin it" in text

    # Pinned on purpose, it is checked like any other: its crossings are named.
    locked = lock.read_text()
    pinned = locked.replace(
        'name = "payments"\napps = [\n', 'name = "payments"\napps = [\n  "refunds",\n'
    )
    assert pinned != locked
    lock.write_text(pinned)
    again = cli(str(shop), "--check", str(lock), "--no-cache", "--json")
    found = json.loads(again.stdout)
    assert found["unpinned"] == []
    assert again.returncode == 0, again.stdout  # payments already depends on orders


# SQL naming another app's table where a pattern reading `FROM <name>` misses it.
HIDDEN_TABLES = {
    "schema-qualified": "DELETE FROM public.payments_payment WHERE id = 1",
    "quoted schema and table": 'DELETE FROM "public"."payments_payment" WHERE id = 1',
    "MySQL backquotes": "UPDATE `shop`.`payments_payment` SET amount = 0",
    "SQL Server brackets": "SELECT amount FROM [dbo].[payments_payment]",
    "second in a comma join": (
        "SELECT p.id FROM catalog_products p, payments_payment x WHERE x.id = p.id"
    ),
    "third in a comma join, with AS and a schema": (
        "SELECT 1 FROM catalog_products AS p, catalog_category AS c, public.payments_payment AS x"
    ),
    # Tables named after USING, TRUNCATE, COPY or ONLY were not seen at all: no crossing.
    "after DELETE ... USING": (
        "DELETE FROM catalog_products p USING payments_payment x WHERE x.id = p.id"
    ),
    "after MERGE ... USING": (
        "MERGE INTO catalog_products p USING payments_payment x ON x.id = p.id "
        "WHEN MATCHED THEN DELETE"
    ),
    "after FROM ONLY": "SELECT 1 FROM ONLY payments_payment",
    "after JOIN ONLY": (
        "SELECT 1 FROM catalog_products p JOIN ONLY payments_payment x ON x.id = p.id"
    ),
    "after UPDATE ONLY": "UPDATE ONLY payments_payment SET amount = 0",
    "second of a TRUNCATE": "TRUNCATE catalog_products, payments_payment",
    "after TRUNCATE TABLE ONLY": "TRUNCATE TABLE ONLY payments_payment",
    "after COPY": "COPY payments_payment TO STDOUT",
    "after COPY with columns": "COPY payments_payment (id, amount) FROM STDIN",
}


@pytest.mark.parametrize("case", sorted(HIDDEN_TABLES))
def test_raw_sql_on_another_apps_table_fails_the_locked_check_however_it_is_named(
    case, locked_shop
):
    shop, lock = locked_shop
    code, found = appended_crossings(
        shop,
        lock,
        "catalog/views.py",
        "\n\nfrom django.db import connection\n\n\ndef void():\n"
        f"    with connection.cursor() as cursor:\n"
        f"        cursor.execute({HIDDEN_TABLES[case]!r})\n",
    )
    assert code == 1
    line = line_of(shop / "catalog" / "views.py", "cursor.execute(")
    assert found == [
        {
            "crossing": ("catalog", "payments", "raw_sql"),
            "line": line,
            "detail": f"cursor.execute({HIDDEN_TABLES[case]!r})",
        }
    ]


# SQL whose table a pattern over one literal missed: built with +, or its name behind a
# comment or in parentheses. (module constant, argument of cursor.execute) per case.
BUILT_TABLES = {
    "two literals added": ("", '"SELECT * FROM " + "payments_payment"'),
    "a module constant plus a literal": (
        'SQL = "SELECT * FROM payments_payment"',
        'SQL + " WHERE id = 1"',
    ),
    "a block comment before the table": ("", '"SELECT * FROM /* c */ payments_payment"'),
    "a line comment before the table": ("", '"SELECT * FROM -- c\\n payments_payment"'),
    "the table in parentheses": ("", '"SELECT * FROM (payments_payment) p"'),
}


@pytest.mark.parametrize("case", sorted(BUILT_TABLES))
def test_raw_sql_built_or_commented_fails_the_locked_check(case, locked_shop):
    shop, lock = locked_shop
    constant, sql = BUILT_TABLES[case]
    code, found = appended_crossings(
        shop, lock, "catalog/views.py",
        f"\n\nfrom django.db import connection\n\n{constant}\n\n\ndef void():\n"
        f"    with connection.cursor() as cursor:\n        cursor.execute({sql})\n",
    )  # fmt: skip
    assert code == 1
    line = line_of(shop / "catalog" / "views.py", "cursor.execute(")
    assert found == [
        {
            "crossing": ("catalog", "payments", "raw_sql"),
            "line": line,
            "detail": f"cursor.execute({sql})",
        }
    ]


def test_raw_sql_with_a_computed_table_name_is_listed_as_unresolved(shop):
    views = shop / "catalog" / "views.py"
    views.write_text(
        views.read_text() + "\n\ndef void(table, pk):\n"
        '    cursor.execute("DELETE FROM " + table + " WHERE id = %s", [pk])\n'
        '    cursor.execute(f"SELECT * FROM {table}")\n'
    )
    report = json.loads(cli(str(shop), "--json", "--no-cache").stdout)
    line = line_of(views, "cursor.execute(")
    assert [
        (u["line"], u["message"])
        for u in report["stats"]["unresolved"]
        if u["file"] == "catalog/views.py"
    ] == [(n, "raw SQL with a computed table name") for n in (line, line + 1)]


@pytest.mark.parametrize(
    ("bound", "call"),
    [
        ("", 'filter(**{"orderline__order__payment__amount__gt": 0})'),
        ("", 'filter(Q(**{"orderline__order__payment__amount__gt": 0}))'),
        ("", 'values_list(*["orderline__order__payment__amount"])'),
        # Bound to a name first, the commoner way to build a filter, they passed unseen.
        ('kw = {"orderline__order__payment__amount__gt": 0}', "filter(**kw)"),
        ('kw = {"orderline__order__payment__amount__gt": 0}', "filter(Q(**kw))"),
        ('fields = ["orderline__order__payment__amount"]', "values_list(*fields)"),
        ('fields = ("orderline__order__payment__amount",)', "values(*fields)"),
    ],
)
def test_lookups_unpacked_from_a_literal_fail_the_locked_check(bound, call, locked_shop):
    assert ("catalog", "payments", "read") in orm_crossings(
        locked_shop, "from django.db.models import Q", bound, call
    )


@pytest.mark.parametrize(
    ("call", "context"),
    [
        ('select_related("stock")', "inventory"),
        ('prefetch_related("orderline_set")', "orders"),
        ('prefetch_related(Prefetch("orderline_set"))', "orders"),
    ],
)
def test_one_relation_joined_or_prefetched_by_name_fails_the_locked_check(
    call, context, locked_shop
):
    # select_related("a") joins a's table and prefetch_related("a") queries it, as "a__b"
    # does; a single name (no "__") was read as a plain field and passed the check unseen.
    assert ("catalog", context, "read") in orm_crossings(
        locked_shop, "from django.db.models import Prefetch", "", call
    )


def orm_crossings(locked_shop, imports: str, bound: str, call: str) -> list[tuple[str, ...]]:
    """The crossings --check fails on for `Product.objects.CALL` appended to catalog's views
    in a function that first runs `bound`, each cited at that line with that call."""
    shop, lock = locked_shop
    body = f"    {bound}\n" if bound else ""
    code, found = appended_crossings(
        shop, lock, "catalog/views.py",
        f"\n\n{imports}\n\n\ndef queried():\n{body}    return Product.objects.{call}\n",
    )  # fmt: skip
    assert code == 1, found
    line = line_of(shop / "catalog" / "views.py", "return Product.objects.")
    detail = f"return Product.objects.{call}"
    return [f["crossing"] for f in found if (f["line"], f["detail"]) == (line, detail)]


# SQL handed to the ORM instead of a cursor: on a manager chain it was never read, and the
# lists and dicts extra() takes were not read anywhere.
ORM_RAW_SQL = [
    'Product.objects.raw("SELECT * FROM payments_payment")',
    'Product._default_manager.raw("SELECT * FROM payments_payment")',
    'Product.objects.filter(pk=1).extra(where=["id IN (SELECT id FROM payments_payment)"])',
    'qs.extra(where=["id IN (SELECT id FROM payments_payment)"])',
    'Product.objects.extra(tables=["payments_payment"], where=["payments_payment.id = 1"])',
    'Product.objects.extra(select={"paid": "SELECT SUM(amount) FROM payments_payment"})',
]


@pytest.mark.parametrize("call", ORM_RAW_SQL)
def test_raw_sql_handed_to_the_orm_fails_the_locked_check(call, locked_shop):
    shop, lock = locked_shop
    code, found = appended_crossings(
        shop, lock, "catalog/views.py", f"\n\ndef listed(qs):\n    return {call}\n"
    )
    assert code == 1, found
    line = line_of(shop / "catalog" / "views.py", f"return {call}")
    assert found == [
        {"crossing": ("catalog", "payments", "raw_sql"), "line": line, "detail": f"return {call}"}
    ]
