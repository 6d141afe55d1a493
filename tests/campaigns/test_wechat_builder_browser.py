"""In Chromium: the campaign builder's WeChat tag picker (tags read from the stubbed WeChat)
creates a wechat_mass campaign by tag and the report shows it; 我的通知方式 binds the member's
WeChat by a scanned QR code (the scan pushed as WeChat signs it) and unbinds it."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, StaffContact
from tests.campaigns.factories import TemplateFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium
from tests.wechat.callbacks import event_xml, push
from tests.wechat.factories import official_account

BOB_OPENID = "o-bob-personal-wechat-000001"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_pick_a_wechat_tag_for_a_mass_campaign(
    live_server, acme, sales_bob, wechat_stub, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    oa = official_account(acme)
    TemplateFactory(
        org=acme, name="上新群发", channel="wechat_mass", body="今晚8点开播", param_names=[]
    )
    wechat_stub.set_tag(2, [], name="星标组")
    wechat_stub.set_tag(101, ["o-a", "o-b"], name="<b>直播常客</b>")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        assert page.locator("#wechat-target").is_hidden()  # SMS by default: no tag picker
        page.select_option("#builder [name=channel]", "wechat_mass")
        page.wait_for_selector("#wechat-tag-select option >> nth=2", state="attached")
        assert page.locator("#wechat-account-name").inner_text() == f"公众号：{oa.name}"
        # Tag names are text, never markup.
        assert page.locator("#wechat-tag-select option >> nth=2").inner_text() == (
            "<b>直播常客</b>（2 人）"
        )
        page.wait_for_selector("#builder [name=variant_a] option", state="attached")
        page.fill("#builder input[name=name]", "标签群发")
        page.select_option("#wechat-tag-select", "101")
        page.click("#builder button[type=submit]")
        page.locator("#report-target").filter(has_text="按用户标签群发").wait_for()
        assert page.locator("#report-target").inner_text() == (
            "按用户标签群发：<b>直播常客</b>（ID 101）"
        )
        campaign = Campaign.objects.for_org(acme).get(name="标签群发")
        assert (campaign.channel, campaign.wechat_account_id, campaign.wechat_tag_id) == (
            "wechat_mass",
            oa.pk,
            101,
        )

        # WeChat unreadable: the picker says so, and "no tag" stays the only choice.
        wechat_stub.fail("cgi-bin/tags/get", 45009, "api freq out of limit", times=5)
        page.select_option("#builder [name=channel]", "sms")
        page.select_option("#builder [name=channel]", "wechat_mass")
        page.locator("#wechat-tag-error").filter(has_text="读取公众号标签失败").wait_for()
        assert page.locator("#wechat-tag-select option").count() == 1
        assert not errors, errors
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_member_binds_and_unbinds_their_wechat_by_scanning(
    live_server, acme, sales_bob, wechat_stub, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    oa = official_account(acme)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        page.click("button[data-tab=journeys]")
        page.locator("#mc-wechat-state").filter(has_text="未绑定微信").wait_for()
        assert page.locator("#mc-unbind").is_hidden()

        page.click("#mc-bind")
        page.wait_for_selector("#mc-qr-img:not([hidden])")
        assert page.locator("#mc-qr-img").get_attribute("src").startswith("data:image/png")
        assert "10 分钟" in page.locator("#mc-qr-hint").inner_text()
        # The member scans it: WeChat pushes the scan with the scene of the code it shows.
        created = wechat_stub.received("cgi-bin/qrcode/create")[-1].json()
        scene = created["action_info"]["scene"]["scene_str"]
        reply = push(oa, event_xml(BOB_OPENID, "subscribe", key=f"qrscene_{scene}"))
        assert reply.status_code == 200

        page.locator("#mc-wechat-state").filter(has_text="o-bo****0001").wait_for()
        assert page.locator("#mc-wechat-state").inner_text() == "已绑定微信 o-bo****0001"
        assert page.locator("#mc-state").inner_text() == "已关注公众号：通知走公众号模板消息"
        assert page.locator("#mc-qr").is_hidden()
        assert StaffContact.objects.for_org(acme).get(user=sales_bob.user).openid_hash

        page.click("#mc-unbind")
        page.locator("#mc-wechat-state").filter(has_text="未绑定微信").wait_for()
        assert page.locator("#mc-unbind").is_hidden()
        assert not StaffContact.objects.for_org(acme).get(user=sales_bob.user).openid_hash
        assert not errors, errors
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        browser.close()
