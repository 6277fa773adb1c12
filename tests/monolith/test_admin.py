"""The back office: every model the shop registers in the admin lists and opens for staff."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from monolith.core.seeding import seed

pytestmark = pytest.mark.django_db

REGISTERED = {
    (model._meta.app_label, model._meta.model_name): model
    for model in admin.site._registry
    if model.__module__.startswith("monolith.")
}
SHOP_MODELS = sorted(REGISTERED)


@pytest.fixture
def back_office(client, db):
    seed(scale=0.02, rng_seed=1)
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(boss)
    return client


def test_every_shop_app_with_models_is_in_the_admin():
    apps = {app for app, _ in SHOP_MODELS}
    assert apps == {
        "catalog", "customers", "promotions", "cart", "orders", "inventory", "payments",
        "shipping", "reviews", "notifications", "reporting",
    }  # fmt: skip


@pytest.mark.parametrize(("app", "model"), SHOP_MODELS, ids=[f"{a}.{m}" for a, m in SHOP_MODELS])
def test_changelist_and_first_object_render(back_office, app, model):
    changelist = back_office.get(f"/admin/{app}/{model}/")
    assert changelist.status_code == 200
    first = (
        admin.site._registry
        and next(
            m
            for m in admin.site._registry
            if (m._meta.app_label, m._meta.model_name) == (app, model)
        )
        .objects.order_by("pk")
        .first()
    )
    if first is not None:
        assert back_office.get(f"/admin/{app}/{model}/{first.pk}/change/").status_code == 200
