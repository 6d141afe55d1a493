"""No broken glyphs: every page of the console, the viewer page and the workspace, in Chinese
and English, at desktop and phone size, shows only characters some installed font has.

Chromium falls back through every font fontconfig knows, so a character no installed font
covers is drawn as a box (the workspace bell was one without an emoji font). The test reads
every text node, title, placeholder and aria-label the page shows (each tab opened), and
checks it against the union of the fonts' character sets (`fc-list`)."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Contact
from livecommerce.models import Coupon
from tests.browser.test_page_language import server  # noqa: F401 - the uvicorn fixture
from tests.factories import ProductFactory, RoomFactory
from tests.livecommerce.factories import RoomProductFactory
from tests.support.browser import launch_chromium

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

TEXT_JS = """() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !parent.closest("script, style, noscript, template")) out.push(walker.currentNode.nodeValue);
  }
  for (const node of document.querySelectorAll("[placeholder], [title], [aria-label]")) {
    for (const name of ["placeholder", "title", "aria-label"]) out.push(node.getAttribute(name) || "");
  }
  return out.join("");
}"""


def installed_coverage() -> set[int]:
    """Every code point some installed font covers (fontconfig's charsets)."""
    listing = subprocess.run(
        ["fc-list", "--format", "%{charset}\\n"], capture_output=True, text=True, check=True
    ).stdout
    covered: set[int] = set()
    for part in listing.split():
        low, _, high = part.partition("-")
        covered.update(range(int(low, 16), int(high or low, 16) + 1))
    return covered


@pytest.fixture
def shop(acme, host_alice, sales_bob):
    room = RoomFactory(
        org=acme,
        streamer=host_alice.profile,
        title="冬季护肤专场",
        status="live",
        started_at=timezone.now(),
    )
    RoomProductFactory(room=room, product=ProductFactory(org=acme, name="玻尿酸保湿面膜"))
    Coupon.unscoped.create(
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
    Contact.objects.for_org(acme).create(
        org=acme, nickname="新来的线索", gender="female", birth_year=timezone.now().year - 30
    )
    return room


def _tabs(page, selector: str):
    for button in page.locator(selector).all():
        if button.is_visible():
            button.click()
            page.wait_for_timeout(300)
            yield button.get_attribute("data-tab")


def _sign_in(page, username: str):
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button[type=submit]")


def visit_every_page(page, base: str, room) -> dict[str, str]:
    """{page and tab: the text it shows}."""
    seen: dict[str, str] = {}

    def read(name: str) -> None:
        seen[name] = page.evaluate(TEXT_JS)

    for path in ("/", "/live/", f"/streamers/{room.streamer_id}/", "/live/999999/"):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        read(path)
    for path in (f"/live/{room.pk}/", f"/live/{room.pk}/replay/"):
        page.goto(f"{base}{path}")
        page.locator("#viewer[data-ready='1']").wait_for(timeout=15_000)
        for tab in _tabs(page, "[data-tab]"):
            read(f"{path} {tab}")
    page.goto(f"{base}/console/")
    read("/console/ sign-in")
    _sign_in(page, "alice")
    page.locator("#rooms:not([hidden])").wait_for(timeout=15_000)
    page.wait_for_load_state("networkidle")
    read("/console/ rooms")
    page.click(f"[data-room='{room.pk}']")
    page.locator("#room:not([hidden])").wait_for(timeout=15_000)
    page.wait_for_load_state("networkidle")
    read("/console/ room")
    page.goto(f"{base}/workspace/")
    read("/workspace/ sign-in")
    _sign_in(page, "bob")
    page.wait_for_selector("#lead-rows tr")
    for tab in _tabs(page, ".ws-top [data-tab]"):
        page.wait_for_load_state("networkidle")
        read(f"/workspace/ {tab}")
    page.click("[data-tab=leads]")
    page.click("#lead-rows tr")
    page.wait_for_load_state("networkidle")
    read("/workspace/ lead detail")
    page.click("#bell")
    read("/workspace/ notifications")
    page.goto(f"{base}/workspace/campaigns/")
    page.wait_for_load_state("networkidle")
    for tab in _tabs(page, ".cp-top [data-tab]"):
        page.wait_for_load_state("networkidle")
        read(f"/workspace/campaigns/ {tab}")
    return seen


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_shows_only_characters_an_installed_font_has(
    server,  # noqa: F811
    shop,
    language,
    viewport,
    monkeypatch,
):
    from playwright.sync_api import sync_playwright

    covered = installed_coverage()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # no ORM below
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
            context.add_cookies([{"name": "django_language", "value": language, "url": server}])
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            seen = visit_every_page(page, server, shop)
        finally:
            browser.close()
    assert len(seen) >= 15, sorted(seen)
    boxes = {
        name: sorted(
            {f"{ch} U+{ord(ch):04X}" for ch in text if not ch.isspace() and ord(ch) not in covered}
        )
        for name, text in seen.items()
    }
    assert {name: chars for name, chars in boxes.items() if chars} == {}
    assert errors == []
