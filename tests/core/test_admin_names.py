"""The admin names every model in the product's words ("Console smss" was Django's guess)."""

import pytest
from django.contrib import admin


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_model_has_its_own_verbose_names(model):
    options = model._meta.original_attrs
    assert "verbose_name" in options and "verbose_name_plural" in options


@pytest.mark.django_db
def test_admin_index_lists_the_console_inbox_by_name(admin_client):
    page = admin_client.get("/admin/", headers={"accept-language": "en"}).content.decode()
    assert "Console SMS inbox" in page and "Console smss" not in page
