"""The viewer page as a viewer uses it (Playwright + Debian's Chromium, a real uvicorn with
the room hub on the integration database), at 390×844 and on a desktop.

A second viewer is a real WebSocket client; the host acts through the staff API, as the
console does. What the viewer must be told, at once and in words: a deleted message
disappears, the announcement shows, slow mode and review are announced, a refused message
says why (sensitive word, too fast), a pending message says it awaits review, a mute or a
ban says so and locks the chat box, also after a reload. Follow, reservation and claimed
coupons are still right after a reload. Screenshots land in docs/screenshots/ with
UPDATE_SCREENSHOTS=1 (test-artifacts/ otherwise).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from core.tokens import issue_staff_token, issue_viewer_token
from livecommerce.models import Coupon
from tests.factories import (
    ContactFactory,
    MembershipFactory,
    OrganizationFactory,
    ProductFactory,
    RoomFactory,
    StreamerProfileFactory,
    UserFactory,
)
from tests.livecommerce.factories import RoomProductFactory
from tests.support.browser import launch_chromium

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The committed pictures in docs/screenshots/ are refreshed only on request
# (UPDATE_SCREENSHOTS=1): otherwise every run would leave a changed file behind.
SCREENSHOTS = Path(settings.BASE_DIR) / (
    "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "test-artifacts"
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class Host:
    """The host's side, through the same staff API the console calls."""

    def __init__(self, base: str, token: str, room_id: int):
        self.base, self.token, self.room_id = base, token, room_id

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310
            f"{self.base}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            data = response.read()
        return json.loads(data) if data else {}

    def room(self, method: str, tail: str, body: dict | None = None) -> dict:
        return self.call(method, f"/rooms/{self.room_id}/{tail}", body)


@pytest.fixture
def shop():
    org = OrganizationFactory(slug="viewer-org", name="观众测试品牌")
    user = UserFactory(username="viewer-host")
    membership = MembershipFactory(org=org, user=user, role="streamer")
    streamer = StreamerProfileFactory(org=org, user=user, name="小美老师")
    room = RoomFactory(
        org=org, streamer=streamer, title="冬季护肤专场", status="live", started_at=timezone.now()
    )
    product = RoomProductFactory(
        room=room, product=ProductFactory(org=org, name="玻尿酸保湿面膜", price=99)
    ).product
    coupon = Coupon.unscoped.create(
        org=org,
        room=room,
        name="满199减30",
        kind="threshold",
        amount=30,
        threshold=199,
        stock=50,
        valid_until=timezone.now() + timedelta(days=1),
        released_at=timezone.now(),
    )
    upcoming = RoomFactory(
        org=org,
        streamer=streamer,
        title="周五新品预告",
        status="scheduled",
        scheduled_start=timezone.now() + timedelta(days=2),
    )
    eve = ContactFactory(org=org, nickname="Eve")
    eve_token = issue_viewer_token(org_id=org.pk, contact_id=eve.pk, device="eve", nickname="Eve")
    return {
        "org": org,
        "room": room,
        "upcoming": upcoming,
        "product": product,
        "coupon": coupon,
        "host_token": issue_staff_token(membership=membership),
        "eve_token": eve_token,
    }


def _open_viewer(browser, base: str, path: str, viewport: dict):
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}{path}")
    page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
    return page, errors


def _my_contact_id(page, org_slug: str) -> int:
    saved = page.evaluate(f"localStorage.getItem('qm.viewer.{org_slug}')")
    return json.loads(saved)["contact_id"]


def _boxes_overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _ws_next(ws, predicate, timeout: float = 10.0) -> dict:
    """The next event (batches unpacked) matching ``predicate`` on a sync websockets client."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no matching event")
        frame = json.loads(ws.recv(timeout=left))
        events = frame["events"] if frame.get("type") == "batch" else [frame]
        for event in events:
            if predicate(event):
                return event


def test_moderation_reaches_the_viewer_at_once(server, shop, monkeypatch):
    from playwright.sync_api import expect, sync_playwright
    from websockets.sync.client import connect

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room = shop["room"]
    host = Host(server, shop["host_token"], room.pk)
    ws_url = server.replace("http", "ws") + f"/ws/rooms/{room.pk}/?token={shop['eve_token']}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p, connect(ws_url) as eve:
        browser = launch_chromium(p)
        dan, errors = _open_viewer(browser, server, f"/live/{room.pk}/", PHONE)
        dan_id = _my_contact_id(dan, "viewer-org")
        chat = dan.locator("#chat")

        # Another viewer's message arrives; the host deletes it: gone from every screen.
        eve.send(json.dumps({"type": "chat", "text": "三号链接还有吗"}))
        expect(chat).to_contain_text("三号链接还有吗", timeout=10000)
        message_id = int(dan.locator("#chat li[data-msg]").last.get_attribute("data-msg"))
        host.room("POST", f"chat/{message_id}/delete")
        expect(chat).not_to_contain_text("三号链接还有吗", timeout=10000)
        deleted = _ws_next(eve, lambda e: e.get("type") == "moderation")
        assert deleted == {**deleted, "action": "delete", "message_id": message_id}

        # The host's announcement and own chat line.
        host.room("POST", "announcement", {"text": "今晚8点抽免单"})
        expect(dan.locator("#announcement")).to_contain_text("今晚8点抽免单", timeout=10000)
        host.room("POST", "chat", {"text": "欢迎新朋友"})
        expect(dan.locator("#chat li.host")).to_contain_text("主播 小美老师：欢迎新朋友")

        # A refused message says why, and the text comes back to be edited.
        host.call("POST", "/sensitive-words", {"pattern": "加微信", "action": "reject"})
        dan.fill("#chat-form input[name=text]", "加微信领红包")
        dan.click("#chat-form button[type=submit]")
        expect(dan.locator("#chat-error")).to_have_text("消息包含敏感词，未发送", timeout=10000)
        expect(dan.locator("#chat-form input[name=text]")).to_have_value("加微信领红包")
        # Too fast: two messages within the per-viewer interval.
        time.sleep(1.1)
        dan.fill("#chat-form input[name=text]", "主播好")
        dan.click("#chat-form button[type=submit]")
        dan.fill("#chat-form input[name=text]", "主播好呀")
        dan.click("#chat-form button[type=submit]")
        expect(dan.locator("#chat-error")).to_have_text("发言太快了，请稍后再试", timeout=10000)
        expect(chat).to_contain_text("主播好")

        # Slow mode and review are announced to everyone; a pending message says so to
        # its author only, and loses the tag once approved.
        host.room("PATCH", "chat-settings", {"slow_mode_seconds": 30, "premoderation": True})
        expect(dan.locator("#chat-state")).to_have_text("本场发言需主播审核后显示", timeout=10000)
        expect(chat).to_contain_text("主播开启了慢速模式：新观众每 30 秒可发言一次")
        expect(chat).to_contain_text("主播开启了发言审核")
        host.room("PATCH", "chat-settings", {"slow_mode_seconds": 0})
        time.sleep(1.1)
        dan.fill("#chat-form input[name=text]", "想要面膜")
        dan.click("#chat-form button[type=submit]")
        pending = dan.locator("#chat li.pending")
        expect(pending).to_contain_text("想要面膜", timeout=10000)
        expect(pending).to_contain_text("审核中，通过后大家可见")
        pending_id = int(pending.get_attribute("data-msg"))
        host.room("POST", f"chat/{pending_id}/approve")
        released = _ws_next(eve, lambda e: e.get("type") == "chat" and e.get("id") == pending_id)
        assert released["status"] == "visible"  # Eve never saw it pending
        expect(dan.locator("#chat li.pending")).to_have_count(0, timeout=10000)
        expect(dan.locator(f"#chat li[data-msg='{pending_id}']")).to_contain_text("想要面膜")
        host.room("PATCH", "chat-settings", {"premoderation": False})
        dan.screenshot(path=str(SCREENSHOTS / "viewer-phone-chat.png"))

        # A mute is told at once, locks the box, and is still there after a reload.
        host.room("POST", "moderation", {"action": "mute", "contact": dan_id, "minutes": 10})
        expect(dan.locator("#chat-state")).to_contain_text("你已被禁言", timeout=10000)
        expect(dan.locator("#chat-form input[name=text]")).to_be_disabled()
        dan.reload()
        dan.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
        expect(dan.locator("#chat-state")).to_contain_text("你已被禁言")
        expect(dan.locator("#chat-form input[name=text]")).to_be_disabled()
        host.room("POST", "moderation", {"action": "unmute", "contact": dan_id})
        expect(dan.locator("#chat-form input[name=text]")).to_be_enabled(timeout=10000)
        expect(dan.locator("#toast")).to_contain_text("你已被解除禁言")

        # A ban closes the socket: the viewer is told, not left typing into the void.
        host.room("POST", "moderation", {"action": "ban", "contact": dan_id})
        expect(dan.locator("#chat-state")).to_contain_text("你已被", timeout=10000)
        expect(dan.locator("#chat-form input[name=text]")).to_be_disabled()
        assert errors == []
        browser.close()


def test_follow_reserve_and_claims_survive_a_reload_and_unfollow_works(server, shop, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room, upcoming, coupon = shop["room"], shop["upcoming"], shop["coupon"]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_viewer(browser, server, f"/live/{room.pk}/", DESKTOP)
        page.click("#follow")
        expect(page.locator("#follow")).to_have_text("已关注")
        page.click("[data-tab='coupons-tab']")
        page.click(f"#coupons [data-claim='{coupon.pk}']")
        expect(page.locator(f"#coupons [data-left='{coupon.pk}']")).to_contain_text("核销码")
        page.reload()
        page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#follow")).to_have_text("已关注")
        page.click("[data-tab='coupons-tab']")
        expect(page.locator(f"#coupons [data-claim='{coupon.pk}']")).to_have_text("已领取")
        expect(page.locator(f"#coupons [data-left='{coupon.pk}']")).to_contain_text("核销码")

        # The reservation, after a reload, on the scheduled room.
        page.goto(f"{server}/live/{upcoming.pk}/")
        page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#follow")).to_have_text("已关注")  # same streamer
        page.click("#reserve")
        expect(page.locator("#reserve")).to_be_disabled()
        page.reload()
        page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#reserve")).to_be_disabled()
        expect(page.locator("#reserve")).to_contain_text("已预约")

        # The streamer's profile knows, and unfollows.
        page.goto(f"{server}/streamers/{room.streamer_id}/")
        page.wait_for_selector("#streamer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#follow")).to_have_text("已关注")
        expect(page.locator("#followers")).to_have_text("1")
        page.click("#follow")
        expect(page.locator("#follow")).to_have_text("关注")
        expect(page.locator("#followers")).to_have_text("0")
        page.reload()
        page.wait_for_selector("#streamer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#follow")).to_have_text("关注")
        assert errors == []
        browser.close()


def test_phone_room_is_vertical_with_chat_over_video_and_nothing_over_the_controls(
    server, shop, monkeypatch
):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room, product = shop["room"], shop["product"]
    host = Host(server, shop["host_token"], room.pk)
    host.room("POST", f"products/{product.pk}/pin")
    host.room("POST", "announcement", {"text": "今晚8点抽免单"})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)

        phone, errors = _open_viewer(browser, server, f"/live/{room.pk}/", PHONE)
        expect(phone.locator("#pinned")).to_contain_text("玻尿酸保湿面膜", timeout=10000)
        expect(phone.locator("#announcement")).to_contain_text("今晚8点抽免单")
        video = phone.locator("#player").bounding_box()
        # Full screen and vertical: the video covers the whole phone screen.
        assert video["width"] >= 389 and video["height"] >= 843
        assert phone.evaluate("document.getElementById('player').controls") is False
        controls = phone.locator("#player-controls").bounding_box()
        chat = phone.locator("#chat-tab").bounding_box()
        assert chat["y"] > PHONE["height"] / 2 and _boxes_overlap(chat, video)  # over the video
        for covering in ("#pinned", ".dock", "#announcement", ".top", ".bottom"):
            box = phone.locator(covering).bounding_box()
            assert not _boxes_overlap(box, controls), covering
        phone.screenshot(path=str(SCREENSHOTS / "viewer-phone.png"))

        desktop, desktop_errors = _open_viewer(browser, server, f"/live/{room.pk}/", DESKTOP)
        expect(desktop.locator("#pinned")).to_contain_text("玻尿酸保湿面膜", timeout=10000)
        assert desktop.evaluate("document.getElementById('player').controls") is True
        player = desktop.locator("#player").bounding_box()
        control_bar = {**player, "y": player["y"] + player["height"] - 48, "height": 48}
        for covering in ("#pinned", "#announcement", "#chat-tab"):
            assert not _boxes_overlap(desktop.locator(covering).bounding_box(), control_bar)
        assert desktop.locator("#player-controls").is_hidden()
        desktop.screenshot(path=str(SCREENSHOTS / "viewer-desktop.png"), full_page=True)
        assert errors == [] and desktop_errors == []
        browser.close()


def test_ended_and_replay_pages_have_no_chat_box(server, shop, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room = shop["room"]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_viewer(browser, server, f"/live/{room.pk}/", PHONE)
        expect(page.locator("#chat-form")).to_be_visible()
        # The room ends while the viewer watches: the chat box goes away without a reload.
        Host(server, shop["host_token"], room.pk).room("POST", "end")
        expect(page.locator("#chat-form")).to_have_count(0, timeout=10000)
        expect(page.locator("#status")).to_have_text("已结束")
        for path in (f"/live/{room.pk}/", f"/live/{room.pk}/replay/"):
            page.goto(f"{server}{path}")
            page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
            expect(page.locator("#chat-form")).to_have_count(0)
            expect(page.locator("[data-tab='chat-tab']")).to_have_count(0)
            expect(page.locator("#products-tab")).to_be_visible()
        assert errors == []
        browser.close()


def test_reserving_asks_how_to_remind_and_binds_the_phone_with_a_code_and_consent(
    server, shop, monkeypatch
):
    """The page never promises a reminder it cannot deliver; the phone step sends a code,
    needs the privacy notice agreed and the SMS consent given, and binds the phone — merging
    the guest into the contact who already had that phone (One-ID)."""
    import re

    from playwright.sync_api import expect, sync_playwright

    from campaigns.demo import seed_org
    from campaigns.models import ConsoleSms
    from crm.models import ContactIdentity
    from crm.services.contacts import contact_get_or_create_by_identity

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    org, upcoming = shop["org"], shop["upcoming"]
    seed_org(org)  # the console SMS account and the service "otp" template
    known, _ = contact_get_or_create_by_identity(
        org=org, kind="phone", value="13812345678", defaults={"nickname": "老客户"}
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_viewer(browser, server, f"/live/{upcoming.pk}/", PHONE)
        guest_id = _my_contact_id(page, "viewer-org")
        assert guest_id != known.pk
        page.click("#reserve")
        expect(page.locator("#reserve")).to_have_text("已预约")
        expect(page.locator("#reminder")).to_be_visible()
        assert "开播前提醒你" not in page.locator("#warmup").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "viewer-phone-reserved.png"))

        page.click("#remind-sms")
        sheet = page.locator("#phone-sheet")
        expect(sheet).to_be_visible()
        page.fill("#phone-form input[name=phone]", "12345")
        page.click("#phone-send")
        expect(page.locator("[data-error='phone']")).to_have_text("请输入11位手机号")
        page.fill("#phone-form input[name=phone]", "13812345678")
        page.click("#phone-send")
        expect(page.locator("#phone-sent")).to_contain_text("验证码已发送", timeout=10000)
        expect(page.locator("#phone-send")).to_be_disabled()
        text = ConsoleSms.objects.for_org(org).latest("id").text
        code = re.search(r"(\d{6})", text).group(1)
        page.fill("#phone-form input[name=code]", code)
        # Neither the notice nor the SMS consent is assumed.
        page.click("#phone-form button[type=submit]")
        expect(page.locator("[data-error='privacy']")).to_have_text(
            "请先阅读并同意个人信息保护说明"
        )
        expect(page.locator("[data-error='sms_consent']")).to_have_text("请同意接收开播提醒短信")
        page.check("#phone-form input[name=privacy]")
        page.check("#phone-form input[name=sms_consent]")
        page.click("#phone-form button[type=submit]")
        expect(sheet).to_be_hidden(timeout=10000)
        expect(page.locator("#toast")).to_contain_text("手机号已绑定")
        expect(page.locator("#reminder")).to_have_text("已预约，开播前短信提醒你（138****5678）")

        # One-ID: the guest is now the contact who had the phone, also after a reload.
        assert _my_contact_id(page, "viewer-org") == known.pk
        assert ContactIdentity.objects.for_org(org).get(kind="phone").contact_id == known.pk
        page.reload()
        page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#reserve")).to_have_text("已预约")
        # With a verified phone, consent and the shipped reminder journey the promise is made,
        # and says where the reminder goes.
        expect(page.locator("#reminder")).to_have_text("已预约，开播前短信提醒你（138****5678）")
        expect(page.locator("#remind-sms")).to_be_hidden()
        assert errors == []
        browser.close()


def test_the_privacy_notice_lets_the_viewer_withdraw_consent_export_and_delete(
    server, shop, monkeypatch
):
    from playwright.sync_api import expect, sync_playwright

    from crm.models import Contact
    from crm.selectors import consent_granted

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room = shop["room"]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_viewer(browser, server, f"/live/{room.pk}/", PHONE)
        contact_id = _my_contact_id(page, "viewer-org")
        # From the phone step's link to the notice, as a viewer would reach it.
        page.goto(f"{server}/live/privacy/?org=viewer-org")
        page.wait_for_selector("#privacy[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("h1")).to_have_text("个人信息保护说明")
        expect(page.locator("main")).to_contain_text("第44–47条")
        profiling = page.locator("#consents input[data-purpose='profiling']")
        expect(profiling).to_be_checked()
        profiling.uncheck()
        expect(page.locator("#toast")).to_contain_text("已撤回同意")
        expect(page.locator("#consents input[data-purpose='profiling']")).not_to_be_checked()
        assert consent_granted(Contact.unscoped.get(pk=contact_id), "profiling") is False
        page.reload()
        page.wait_for_selector("#privacy[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#consents input[data-purpose='profiling']")).not_to_be_checked()
        page.screenshot(path=str(SCREENSHOTS / "viewer-privacy-phone.png"), full_page=True)

        # Export: a download of everything held about this viewer.
        with page.expect_download() as download:
            page.click("#export")
        saved = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert saved["contact"] == contact_id and "crm.Contact" in saved["tables"]

        # Delete: asked twice, then gone — the page says so and forgets the session.
        page.click("#erase")
        expect(page.locator("#erase-confirm")).to_be_visible()
        page.click("#erase-yes")
        expect(page.locator("#erased")).to_be_visible(timeout=10000)
        expect(page.locator("#erased")).to_have_text("你的个人信息已删除。")
        assert Contact.unscoped.get(pk=contact_id).erased_at is not None
        assert page.evaluate("localStorage.getItem('qm.viewer.viewer-org')") is None
        assert errors == []
        browser.close()


def test_sharing_asks_a_guest_for_a_name_and_the_invite_ranking_counts_the_friend(
    server, shop, monkeypatch
):
    from playwright.sync_api import expect, sync_playwright

    from livecommerce.models import InviteCode

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room = shop["room"]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_viewer(browser, server, f"/live/{room.pk}/", PHONE)
        page.click("#share")
        # A made-up guest name is never printed on a poster: the viewer names themselves.
        expect(page.locator("#nickname-sheet")).to_be_visible()
        page.click("#nickname-form button[type=submit]")
        expect(page.locator("[data-error='nickname']")).to_have_text("请填写昵称")
        page.fill("#nickname-form input[name=nickname]", "小红")
        page.click("#nickname-form button[type=submit]")
        expect(page.locator("#poster")).to_be_visible(timeout=15000)
        expect(page.locator("#poster-img")).to_have_attribute("src", re.compile("^blob:"))
        page.click("#poster-close")
        # The chosen name is the chat name too (the socket was reopened with it).
        page.fill("#chat-form input[name=text]", "大家好")
        page.click("#chat-form button[type=submit]")
        expect(page.locator("#chat")).to_contain_text("小红：大家好", timeout=10000)
        # Sharing again does not ask again.
        page.click("#share")
        expect(page.locator("#poster")).to_be_visible(timeout=15000)
        expect(page.locator("#nickname-sheet")).to_be_hidden()
        page.click("#poster-close")

        # A friend arrives through the invite link: the ranking on the page counts them.
        code = InviteCode.unscoped.get(contact_id=_my_contact_id(page, "viewer-org")).code
        friend, friend_errors = _open_viewer(
            browser, server, f"/live/{room.pk}/?invite={code}", PHONE
        )
        page.click("#invites-tab-button")
        mine = page.locator("#invites li.me")
        expect(mine).to_contain_text("小红（我）", timeout=10000)
        expect(mine).to_contain_text("邀请 1 人")
        page.screenshot(path=str(SCREENSHOTS / "viewer-phone-invites.png"))
        assert errors == [] and friend_errors == []
        browser.close()


def test_an_english_viewer_reads_the_moderation_words_in_english(server, shop, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    room = shop["room"]
    host = Host(server, shop["host_token"], room.pk)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport=PHONE, locale="en-US")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server}/live/{room.pk}/")
        page.wait_for_selector("#viewer[data-ready='1']", state="attached", timeout=15000)
        expect(page.locator("#chat-tab-button")).to_have_text("Chat")
        # Longer English labels still leave the player's buttons uncovered.
        controls = page.locator("#player-controls").bounding_box()
        for covering in (".bottom", ".top"):
            assert not _boxes_overlap(page.locator(covering).bounding_box(), controls), covering
        host.room("PATCH", "chat-settings", {"premoderation": True})
        expect(page.locator("#chat-state")).to_have_text(
            "Messages in this room appear after the host approves them", timeout=10000
        )
        host.room("POST", "announcement", {"text": "Free shipping tonight"})
        expect(page.locator("#announcement")).to_contain_text("Free shipping tonight")
        page.screenshot(path=str(SCREENSHOTS / "viewer-phone-en.png"))
        assert errors == []
        browser.close()


def test_binding_a_phone_from_the_mine_sheet_merges_the_viewer_and_keeps_the_room_going(
    server, shop, monkeypatch
):
    import re

    from playwright.sync_api import expect, sync_playwright

    from campaigns.demo import seed_org
    from campaigns.models import ConsoleSms
    from crm.models import Contact
    from crm.services.contacts import contact_get_or_create_by_identity

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    org, room = shop["org"], shop["room"]
    seed_org(org)
    known, _ = contact_get_or_create_by_identity(
        org=org, kind="phone", value="13912345678", defaults={"nickname": "老客户"}
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_viewer(browser, server, f"/live/{room.pk}/", PHONE)
        guest_id = _my_contact_id(page, "viewer-org")
        page.click("#mine")
        expect(page.locator("#mine-phone")).to_have_text("未绑定")
        page.click("#mine-bind")
        page.fill("#phone-form input[name=phone]", "13912345678")
        page.click("#phone-send")
        expect(page.locator("#phone-sent")).to_be_visible(timeout=10000)
        code = re.search(r"(\d{6})", ConsoleSms.objects.for_org(org).latest("id").text).group(1)
        page.fill("#phone-form input[name=code]", code)
        page.check("#phone-form input[name=privacy]")
        page.click("#phone-form button[type=submit]")
        expect(page.locator("#mine-sheet")).to_be_visible(timeout=10000)
        expect(page.locator("#mine-phone")).to_have_text("已绑定")
        expect(page.locator("#mine-bind")).to_be_hidden()
        # One-ID: the guest became the known contact; the room socket speaks for them now.
        assert _my_contact_id(page, "viewer-org") == known.pk
        assert Contact.unscoped.get(pk=guest_id).merged_into_id == known.pk
        # Renaming from the same sheet: the new name is the chat name from then on.
        page.click("#mine-rename")
        expect(page.locator("#nickname-title")).to_have_text("改昵称")
        page.fill("#nickname-form input[name=nickname]", "老王")
        page.click("#nickname-form button[type=submit]")
        expect(page.locator("#mine-name")).to_have_text("老王", timeout=10000)
        page.click("#mine-close")
        page.fill("#chat-form input[name=text]", "绑好了")
        page.click("#chat-form button[type=submit]")
        line = page.locator("#chat li", has_text="绑好了")
        expect(line).to_be_visible(timeout=10000)
        expect(line).to_contain_text("老王：绑好了")
        assert errors == []
        browser.close()
