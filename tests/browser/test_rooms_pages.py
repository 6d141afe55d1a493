"""Browser tests (Playwright + Debian's Chromium) of the host console and the viewer page,
served by a real uvicorn (ASGI + the room WebSocket hub) on the integration database.

A viewer opens the room; the host pins a product in the console and the viewer sees it
appear (pushed through ws.js, no reload); the viewer claims a coupon and gets a receipt;
a second coupon is already gone and the viewer sees 已抢光. Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from core.tokens import issue_viewer_token
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

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def live_room():
    org = OrganizationFactory(slug="browser-org", name="浏览器测试品牌")
    user = UserFactory(username="browser-host")
    MembershipFactory(org=org, user=user, role="streamer")
    streamer = StreamerProfileFactory(org=org, user=user, name="小美老师")
    room = RoomFactory(
        org=org, streamer=streamer, title="冬季护肤专场", status="live", started_at=timezone.now()
    )
    mask = RoomProductFactory(
        room=room, product=ProductFactory(org=org, name="玻尿酸保湿面膜", price=99)
    )
    RoomProductFactory(room=room, product=ProductFactory(org=org, name="氨基酸洁面乳", price=59))
    until = timezone.now() + timedelta(days=1)
    plenty = Coupon.unscoped.create(
        org=org,
        room=room,
        name="满199减30",
        kind="threshold",
        amount=30,
        threshold=199,
        stock=50,
        valid_until=until,
        released_at=timezone.now(),
    )
    scarce = Coupon.unscoped.create(
        org=org,
        room=room,
        name="秒杀无门槛券",
        kind="no_threshold",
        amount=20,
        stock=1,
        valid_until=until,
        released_at=timezone.now(),
    )
    early = ContactFactory(org=org, nickname="早到的观众")
    early_token = issue_viewer_token(org_id=org.pk, contact_id=early.pk, device="early")
    return room, mask.product, plenty, scarce, early_token


def test_viewer_sees_pin_claims_a_coupon_and_sees_sold_out(server, live_room, monkeypatch):
    import urllib.request

    from playwright.sync_api import expect, sync_playwright

    room, product, plenty, scarce, early_token = live_room
    # Someone else takes the only "秒杀" coupon first (through the same claim route).
    request = urllib.request.Request(  # noqa: S310
        f"{server}/api/v1/coupons/{scarce.pk}/claim",
        method="POST",
        headers={"Authorization": f"Token {early_token}"},
    )
    assert urllib.request.urlopen(request, timeout=10).status == 201  # noqa: S310
    ARTIFACTS.mkdir(exist_ok=True)

    # No ORM below; Playwright's sync API owns an event loop in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        viewer = phone.new_page()
        errors: list[str] = []
        viewer.on("pageerror", lambda exc: errors.append(str(exc)))
        viewer.goto(f"{server}/live/{room.pk}/")
        expect(viewer.locator("#viewer[data-ready='1']")).to_be_attached(timeout=15000)
        expect(viewer.locator("#pinned")).to_be_hidden()

        console_context = browser.new_context(
            viewport={"width": 390, "height": 844}, locale="zh-CN"
        )
        console = console_context.new_page()
        console.goto(f"{server}/console/")
        console.fill("input[name=username]", "browser-host")
        console.fill("input[name=password]", "pw-123456")
        console.click("#login-form button[type=submit]")
        console.click(f"[data-room='{room.pk}']")
        console.click(f"[data-pin='{product.pk}']")
        expect(console.locator("#products li.pinned")).to_contain_text("玻尿酸保湿面膜")
        # Live stock in the console: the early claim is already counted.
        expect(console.locator("#coupons")).to_contain_text("剩余 0/1")
        console.screenshot(path=str(ARTIFACTS / "console-pinned.png"), full_page=True)

        # Pushed over the room WebSocket: no reload on the viewer side.
        expect(viewer.locator("#pinned")).to_contain_text("讲解中 · 玻尿酸保湿面膜", timeout=10000)
        viewer.screenshot(path=str(ARTIFACTS / "viewer-pinned.png"), full_page=True)

        viewer.click("[data-tab='coupons-tab']")
        viewer.click(f"#coupons [data-claim='{plenty.pk}']")
        expect(viewer.locator("#toast")).to_contain_text("领取成功")
        expect(viewer.locator(f"#coupons [data-left='{plenty.pk}']")).to_contain_text("核销码")
        viewer.screenshot(path=str(ARTIFACTS / "viewer-claimed.png"), full_page=True)

        # The only "秒杀" coupon went to someone else: the card says so and cannot be tapped.
        sold_out = viewer.locator(f"#coupons [data-claim='{scarce.pk}']")
        expect(sold_out).to_have_text("已抢光")
        expect(sold_out).to_be_disabled()
        expect(viewer.locator(f"#coupons [data-left='{scarce.pk}']")).to_have_text("剩余 0 张")
        viewer.screenshot(path=str(ARTIFACTS / "viewer-sold-out.png"), full_page=True)
        assert errors == []
        browser.close()
