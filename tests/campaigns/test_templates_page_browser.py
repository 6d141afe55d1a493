"""No API needed to create a message template: the campaigns page's 消息模板 tab shows each
channel's rules, creates a template, and puts the API's field errors under the field — in
Chromium at 390×844 and on a desktop."""

from __future__ import annotations

import pytest

from campaigns.models import MessageTemplate
from tests.support.browser import launch_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_create_a_template_with_the_channels_rules_in_view(live_server, acme, sales_bob):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        for i, viewport in enumerate(
            ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
        ):
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/campaigns/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.wait_for_selector("#app:not([hidden])")
            page.click(".tabs button[data-tab=templates]")
            form = page.locator("#template-form")
            assert "退订" in page.locator("#channel-rules").inner_text()
            form.locator("[name=channel]").select_option("wechat_template")
            assert "不得用于营销" in page.locator("#channel-rules").inner_text()
            form.locator("[name=channel]").select_option("sms")
            form.locator("[name=name]").fill(f"周末上新{i}")
            # An unknown placeholder is refused by the API, named under the body.
            form.locator("[name=body]").fill("{foo} 周末上新，回T退订")
            form.locator("button[type=submit]").click()
            form.locator(".err[data-for=body]").filter(has_text="foo").wait_for()
            form.locator("[name=body]").fill("周末上新，回T退订")
            form.locator("[name=provider_template_id]").fill("200001")
            form.locator("button[type=submit]").click()
            page.locator("#template-list li", has_text=f"周末上新{i}").wait_for()
            assert form.locator(".err[data-for=body]").inner_text() == ""
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()
    assert MessageTemplate.objects.for_org(acme).filter(name__startswith="周末上新").count() == 2
