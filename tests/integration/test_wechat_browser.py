"""Browser: a viewer opens a shared room link inside WeChat's browser; the page signs them in
through WeChat OAuth (the stub plays WeChat), the invite code in the link attributes them to
the inviter, and the inviter shows up in the room's invite leaderboard."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from core.tokens import issue_viewer_token
from crm.models import ContactIdentity
from livecommerce.models import Invite
from livecommerce.services.invites import invite_code_for
from tests.factories import ContactFactory, OrganizationFactory, RoomFactory
from tests.integration.wechat_server import app_server
from tests.support.browser import launch_chromium
from tests.wechat.factories import official_account
from wechat.stub import WeChatStub

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI "
    "Language/zh_CN"
)


def test_shared_link_opened_in_wechat_signs_in_and_credits_the_inviter(settings):
    from playwright.sync_api import sync_playwright

    org = OrganizationFactory(slug=f"br-{uuid.uuid4().hex[:6]}", name="浏览器测试品牌")
    official_account(org, appid="wxbrowser00000001")
    room = RoomFactory(org=org, streamer__org=org, title="邀请测试专场")
    inviter = ContactFactory(org=org, nickname="邀请人小张")
    code = invite_code_for(contact=inviter)

    with (
        WeChatStub() as stub,
        app_server(
            WECHAT_API_BASE=stub.base_url, WECHAT_CACHE_PREFIX=f"wx-br-{uuid.uuid4().hex[:6]}"
        ) as url,
    ):
        # No database call inside the Playwright block: it runs an event loop in this thread.
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_context(
                    user_agent=WECHAT_UA, viewport={"width": 390, "height": 844}
                ).new_page()
                page.goto(f"{url}/live/{room.pk}/?invite={code}", wait_until="load")
                page.wait_for_selector("#viewer[data-ready='1']", timeout=20_000)
                final_url = page.url
                # the share card: JS-SDK loaded from static/vendor, this page signed
                page.wait_for_function(
                    "document.documentElement.dataset.wxShare === 'configured'", timeout=10_000
                )
                wx_api = page.evaluate("typeof window.wx.updateAppMessageShareData")
                session = page.evaluate(f"JSON.parse(localStorage.getItem('qm.viewer.{org.slug}'))")
            finally:
                browser.close()
        # back on the room page, the code gone from the address bar, the invite kept
        assert final_url == f"{url}/live/{room.pk}/?invite={code}"
        assert stub.received("connect/oauth2/authorize")
        assert stub.received("sns/oauth2/access_token")
        assert wx_api == "function" and stub.received("cgi-bin/ticket/getticket")

        invite = Invite.objects.for_org(org).get()
        assert invite.inviter_id == inviter.pk
        assert invite.invitee_id == session["contact_id"]
        assert (
            ContactIdentity.objects.for_org(org)
            .filter(contact_id=session["contact_id"], kind="openid", app_id="wxbrowser00000001")
            .exists()
        )

        # the room's invite leaderboard, as the viewer page's API serves it
        token = issue_viewer_token(org_id=org.pk, contact_id=inviter.pk, device="x")
        deadline = time.monotonic() + 5
        rows = []
        while time.monotonic() < deadline and not rows:
            rows = requests.get(
                f"{url}/api/v1/rooms/{room.pk}/invite-leaderboard",
                headers={"Authorization": f"Token {token}"},
                timeout=10,
            ).json()
        assert rows == [
            {"contact_id": inviter.pk, "nickname": "邀请人小张", "direct": 1, "total": 1}
        ]
