"""The WeChat models moved from the campaigns app to the wechat app in Django's state only
(wechat/migrations/0001_move_from_campaigns.py): same tables, and the two app-label references
stored in rows follow them."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from crm.models import Contact
from crm.services.identity import contact_merge, contact_merge_undo
from tests.factories import ContactFactory
from tests.wechat.factories import official_account, wechat_follower
from wechat.models import WeChatAccount, WeChatFollower

pytestmark = pytest.mark.django_db

move = importlib.import_module("wechat.migrations.0001_move_from_campaigns")
# The data step only needs the editor's connection (a real SQLite schema editor refuses to
# open inside the test's transaction).
EDITOR = SimpleNamespace(connection=connection)


def test_the_models_keep_their_campaigns_tables():
    for name in move.MOVED:
        model = apps.get_model("wechat", name)
        assert model._meta.db_table == f"campaigns_{name.lower()}"
    assert WeChatAccount._meta.app_label == "wechat"


def test_a_content_type_of_the_old_label_moves_with_its_permissions():
    ContentType.objects.filter(app_label="wechat", model="phoneotp").delete()
    old = ContentType.objects.create(app_label="campaigns", model="phoneotp")
    perm = Permission.objects.create(content_type=old, codename="add_phoneotp", name="Can add")

    move.relabel_forward(apps, EDITOR)

    perm.refresh_from_db()
    assert perm.content_type.app_label == "wechat"
    assert perm.content_type.model == "phoneotp"


def test_undoing_a_merge_made_before_the_move_moves_the_follower_back(acme):
    oa = official_account(acme)
    absorbed = wechat_follower(acme, oa, "openid-absorbed")
    survivor = ContactFactory(org=acme)
    merge = contact_merge(survivor=survivor, absorbed=absorbed)
    follower = WeChatFollower.unscoped.get(account=oa)
    assert follower.contact_id == survivor.pk
    # A merge recorded by the code before the move names the model campaigns.WeChatFollower.
    rows = merge.moved["rows"]
    rows["campaigns.WeChatFollower"] = rows.pop("wechat.WeChatFollower")
    type(merge).unscoped.filter(pk=merge.pk).update(moved=merge.moved)

    move.relabel_forward(apps, EDITOR)
    merge.refresh_from_db()
    assert "wechat.WeChatFollower" in merge.moved["rows"]
    contact_merge_undo(merge=merge)

    follower.refresh_from_db()
    assert follower.contact_id == absorbed.pk
    assert Contact.objects.for_org(acme).filter(pk=absorbed.pk, merged_into=None).exists()
