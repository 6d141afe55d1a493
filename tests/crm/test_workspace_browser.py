"""The sales workspace in Chromium: sign in, the pool sorted by score, a lead's breakdown,
a segment's live count, all on a phone-sized screen too."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from crm.demo import seed_scoring_model
from crm.models import Contact
from crm.services.scoring import org_rescore
from tests.support.browser import launch_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_work_the_pool_in_the_workspace(live_server, acme, sales_bob, settings, tmp_path):
    from playwright.sync_api import sync_playwright

    settings.MEDIA_ROOT = str(tmp_path)
    seed_scoring_model(acme)
    year = timezone.now().year
    Contact.objects.for_org(acme).create(
        org=acme, nickname="<img src=x onerror=alert(1)>", gender="male"
    )
    top = Contact.objects.for_org(acme).create(
        org=acme, nickname="高分线索", gender="female", birth_year=year - 30, income_level="high"
    )
    org_rescore(org_id=acme.pk)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
            # A Chinese-speaking browser: the pool is asserted in Chinese, script text included.
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.wait_for_selector("#lead-rows tr")
            first = page.locator("#lead-rows tr").first
            assert "高分线索" in first.inner_text()
            # User text is text, never markup.
            assert page.locator("#lead-rows img").count() == 0
            first.click()
            page.wait_for_selector("#detail table.breakdown")
            detail = page.locator("#detail").inner_text()
            assert "女性" in detail and "65" in detail and "画像与评分" in detail
            page.click("button[data-tab=segments]")
            page.click("#seg-add")
            page.fill("#seg-rows input[name=value]", "female")
            # (no wait_for_function: the strict CSP forbids eval)
            page.locator("#seg-count").filter(has_text=re.compile(r"^1$")).wait_for()
            if viewport["width"] > 1000:
                # Export runs as a job: progress, then the download link.
                page.click("button[data-tab=leads]")
                page.click("#export")
                page.wait_for_selector("#job-download:not([hidden])")
                assert "2" in page.locator("#job-text").inner_text()
                # Teams: everyone sees them (admins manage them).
                page.click("button[data-tab=teams]")
                page.wait_for_selector("#team-list li")
                assert page.locator("#team-form").is_hidden()
            assert not errors, errors
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()
    assert top.pk
