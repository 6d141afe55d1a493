"""Django admin: staff contact points shown masked (never decrypted in the list), found by
keyed hash; WeChat tag members read-only."""

import pytest

from campaigns.models import WeChatTagMember
from campaigns.services.owner_notify import staff_contact_set
from core import pii
from tests.wechat.factories import official_account

pytestmark = pytest.mark.django_db

BOB_OPENID = "o-bob-personal-wechat-000001"


@pytest.fixture
def bobs_contact(acme, sales_bob):
    oa = official_account(acme)
    return staff_contact_set(
        org_id=acme.pk,
        user=sales_bob.user,
        phone="13900000001",
        wechat_account=oa,
        openid=BOB_OPENID,
    )


def test_the_staff_contact_list_shows_masked_values_without_decrypting(
    acme, admin_browser, bobs_contact, monkeypatch
):
    def refuse(token):
        raise AssertionError("the list decrypted personal data")

    monkeypatch.setattr(pii, "decrypt", refuse)
    page = admin_browser.get("/admin/campaigns/staffcontact/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "139****0001" in html and "o-bo****0001" in html
    assert "13900000001" not in html and BOB_OPENID not in html
    assert bobs_contact.phone_encrypted not in html and bobs_contact.phone_hash not in html

    detail = admin_browser.get(f"/admin/campaigns/staffcontact/{bobs_contact.pk}/change/")
    assert detail.status_code == 200
    assert "139****0001" in detail.content.decode()
    assert "13900000001" not in detail.content.decode()


def test_admins_find_a_member_by_full_phone_or_openid(acme, admin_browser, bobs_contact):
    for term in ("13900000001", BOB_OPENID, "bob"):
        page = admin_browser.get("/admin/campaigns/staffcontact/", {"q": term})
        assert page.status_code == 200 and "139****0001" in page.content.decode(), term
    miss = admin_browser.get("/admin/campaigns/staffcontact/", {"q": "13900000002"})
    assert "139****0001" not in miss.content.decode()


def test_the_unbind_action_clears_the_openid(acme, admin_browser, bobs_contact):
    admin_browser.post(
        "/admin/campaigns/staffcontact/",
        {"action": "wechat_unbind", "_selected_action": [bobs_contact.pk]},
    )
    bobs_contact.refresh_from_db()
    assert (bobs_contact.openid_hash, bobs_contact.openid_masked) == ("", "")
    assert bobs_contact.phone_masked == "139****0001"


def test_other_organisations_rows_stay_hidden(
    acme, other_org, outsider_erin, admin_browser, bobs_contact
):
    theirs = staff_contact_set(org_id=other_org.pk, user=outsider_erin.user, phone="13700000007")
    page = admin_browser.get("/admin/campaigns/staffcontact/")
    assert "137****0007" not in page.content.decode()
    assert admin_browser.get(f"/admin/campaigns/staffcontact/{theirs.pk}/change/").status_code in (
        302,
        404,
    )


def test_wechat_tag_members_are_read_only(acme, admin_browser):
    oa = official_account(acme)
    member = WeChatTagMember.objects.for_org(acme).create(
        org=acme, account=oa, tag_id=101, openid_hash=pii.lookup_hash("openid", "o-a")
    )
    page = admin_browser.get("/admin/campaigns/wechattagmember/")
    assert page.status_code == 200 and member.openid_hash in page.content.decode()
    assert (
        admin_browser.get(f"/admin/campaigns/wechattagmember/{member.pk}/change/").status_code
        == 200
    )
    assert admin_browser.get("/admin/campaigns/wechattagmember/add/").status_code == 403
    delete = admin_browser.get(f"/admin/campaigns/wechattagmember/{member.pk}/delete/")
    assert delete.status_code == 403
