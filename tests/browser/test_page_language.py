"""The page scripts in the language of the page (Playwright + Debian's Chromium), served by a
real uvicorn on the integration database.

By default the workspace and the viewer page speak Chinese, script-built text included.
A user who presses the header's English button gets English labels from the scripts too
(the choice beats the browser's Chinese Accept-Language). Screenshots in test-artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from crm.models import Contact
from livecommerce.models import Coupon
from tests.factories import ProductFactory, RoomFactory
from tests.livecommerce.factories import RoomProductFactory
from tests.support.browser import launch_chromium
from tests.support.servers import ROOT, free_port, wait_for_port

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def server():
    """The ASGI app (room hub included) on this test's database."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "COUPON_REDIS_PREFIX": f"qmlang-{port}",
        "TASK_RUNNER": "eager",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "qianmian.asgi:application", "--host", "127.0.0.1"]
        + ["--port", str(port), "--lifespan", "on", "--ws", "core.websocket:WebSocketProtocol"]
        + ["--no-access-log", "--log-level", "warning"],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for_port(port, proc=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def live_room(acme, host_alice):
    room = RoomFactory(
        org=acme,
        streamer=host_alice.profile,
        title="冬季护肤专场",
        status="live",
        started_at=timezone.now(),
    )
    RoomProductFactory(room=room, product=ProductFactory(org=acme, name="玻尿酸保湿面膜"))
    coupon = Coupon.unscoped.create(
        org=acme,
        room=room,
        name="满199减30",
        kind="threshold",
        amount=30,
        threshold=199,
        stock=50,
        valid_until=timezone.now() + timedelta(days=1),
        released_at=timezone.now(),
    )
    return room, coupon


def _workspace(browser, server, *, english: bool):
    # Both contexts ask for Chinese: English comes only from the page's switch.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/workspace/")
    if english:
        with page.expect_navigation():
            page.click("#login .lang-switch button")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#lead-rows tr")
    return context, page, errors


def _viewer(browser, server, room, *, english: bool):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/live/{room.pk}/")
    if english:
        with page.expect_navigation():
            page.click("header.top .lang-switch button")
    page.locator("#viewer[data-ready='1']").wait_for(timeout=15000)
    page.click("[data-tab='coupons-tab']")
    return context, page, errors


def test_workspace_and_viewer_speak_the_language_chosen_on_the_page(
    server, acme, sales_bob, live_room, monkeypatch
):
    from playwright.sync_api import expect, sync_playwright

    room, coupon = live_room
    Contact.objects.for_org(acme).create(
        org=acme, nickname="新来的线索", gender="female", birth_year=timezone.now().year - 30
    )
    ARTIFACTS.mkdir(exist_ok=True)
    # No ORM below; Playwright's sync API owns an event loop in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = launch_chromium(p)

        context, page, errors = _workspace(browser, server, english=False)
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("#lead-rows")).to_contain_text("公海")
        expect(page.locator("#lead-rows")).to_contain_text("女 · 30岁")
        expect(page.locator("#page-info")).to_have_text("1 / 1 · 共 1 条")
        expect(page.locator(".ws-top .lang-switch button")).to_have_text("English")
        assert errors == []
        context.close()

        context, page, errors = _workspace(browser, server, english=True)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#lead-rows")).to_contain_text("Lead pool")
        expect(page.locator("#lead-rows")).to_contain_text("Female · 30 yrs")
        expect(page.locator("#page-info")).to_have_text("1 / 1 · 1 total")
        page.click("#lead-rows tr")
        expect(page.locator("#detail")).to_contain_text("Follow-up")
        expect(page.locator("#detail")).to_contain_text("Owner: Lead pool")
        expect(page.locator("#detail button", has_text="Assign to me")).to_be_visible()
        expect(page.locator(".ws-top .lang-switch button")).to_have_text("中文")
        page.screenshot(path=str(ARTIFACTS / "workspace-english.png"), full_page=True)
        # The campaigns page shares the sign-in and the language.
        page.goto(f"{server}/workspace/campaigns/")
        expect(page.locator("#segment-select option").first).to_have_text("All leads")
        assert errors == []
        context.close()

        context, page, errors = _viewer(browser, server, room, english=False)
        expect(page.locator("#status")).to_have_text("直播中")
        expect(page.locator(f"[data-claim='{coupon.pk}']")).to_have_text("立即领取")
        expect(page.locator(f"[data-left='{coupon.pk}']")).to_have_text("剩余 50 张")
        expect(page.locator(f"[data-coupon='{coupon.pk}'] b")).to_have_text("满199减30")
        assert errors == []
        context.close()

        context, page, errors = _viewer(browser, server, room, english=True)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#status")).to_have_text("Live")
        expect(page.locator("#followers")).to_have_text("0 followers")
        expect(page.locator(f"[data-claim='{coupon.pk}']")).to_have_text("Claim")
        expect(page.locator(f"[data-left='{coupon.pk}']")).to_have_text("50 left")
        expect(page.locator(f"[data-coupon='{coupon.pk}'] b")).to_have_text("¥30 off ¥199+")
        page.click(f"[data-claim='{coupon.pk}']")
        expect(page.locator("#toast")).to_contain_text("Claimed!")
        expect(page.locator(f"[data-claim='{coupon.pk}']")).to_have_text("Claimed")
        page.screenshot(path=str(ARTIFACTS / "viewer-english.png"), full_page=True)
        page.goto(f"{server}/streamers/{room.streamer_id}/")
        expect(page.locator("#rooms .badge")).to_have_text("Live")
        assert errors == []
        context.close()
        browser.close()
