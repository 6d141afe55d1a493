"""Invite ranking and fraud flags where sales work (issue 17: "invite ranking exists only as
an API; share-graph fraud flags appear on no page"): the workspace's 邀请 tab, in Chromium on
a phone and a desktop, and its API (sales/admin only, per organisation, per room)."""

from __future__ import annotations

import pytest

from crm.models import Contact
from livecommerce.models import Invite, InviteCredit
from tests.factories import RoomFactory
from tests.support.browser import launch_chromium


def _graph(acme, host_alice):
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    people = {
        n: Contact.objects.for_org(acme).create(org=acme, nickname=n)
        for n in ("阿花", "小白", "小黑", "马甲")
    }
    for invitee in ("小白", "小黑"):
        invite = Invite.objects.for_org(acme).create(
            org=acme, inviter=people["阿花"], invitee=people[invitee], room=room
        )
        InviteCredit.objects.for_org(acme).create(
            org=acme, invite=invite, ancestor=people["阿花"], hops=1
        )
    Invite.objects.for_org(acme).create(
        org=acme, inviter=people["阿花"], invitee=people["马甲"], room=room, flagged="same_device"
    )
    return room


def test_the_invites_api_ranks_clean_invites_and_lists_flagged_ones(
    acme, host_alice, sales_bob, viewer_dan
):
    room = _graph(acme, host_alice)
    body = sales_bob.client().get(f"/api/v1/invites?room={room.pk}").json()
    assert [(r["nickname"], r["direct"]) for r in body["leaderboard"]] == [("阿花", 2)]
    assert [(f["inviter"], f["invitee"], f["flag"]) for f in body["flagged"]] == [
        ("阿花", "马甲", "same_device")
    ]
    assert sales_bob.client().get("/api/v1/invites?room=x").status_code == 400
    assert host_alice.client().get("/api/v1/invites").status_code == 403
    assert viewer_dan.client().get("/api/v1/invites").status_code in (401, 403)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_see_the_invite_ranking_and_the_flagged_invites(
    live_server, acme, host_alice, sales_bob
):
    from playwright.sync_api import sync_playwright

    _graph(acme, host_alice)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.wait_for_selector("#app:not([hidden])")
            page.click(".tabs button[data-tab=invites]")
            page.locator("#invite-rows tr", has_text="阿花").wait_for()
            assert page.locator("#invite-rows tr").first.inner_text().split("\t") == [
                "阿花",
                "2",
                "2",
            ]
            flag = page.locator("#invite-flags li[data-flag=same_device]")
            assert "同一设备" in flag.inner_text() and "阿花 邀请 马甲" in flag.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()
