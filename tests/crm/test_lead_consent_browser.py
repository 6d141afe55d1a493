"""Consents are editable in the workspace with their source and evidence, and a person's data
exports from their lead detail (admins only) — in Chromium, on a desktop and on a phone."""

from __future__ import annotations

import json

import pytest

from crm.models import ConsentEvent, Contact
from tests.support.browser import launch_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_record_consent_with_evidence_and_export_a_persons_data(
    live_server, acme, sales_bob, admin_carol, tmp_path, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM between page steps

    with sync_playwright() as p:
        browser = launch_chromium(p)
        for i, viewport in enumerate(
            ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
        ):
            lead = Contact.objects.for_org(acme).create(org=acme, nickname=f"授权{i}")
            page = browser.new_page(viewport=viewport, locale="zh-CN", accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.locator("#lead-rows tr", has_text=f"授权{i}").click()
            item = page.locator(".consents li[data-purpose=sms_marketing]")
            item.locator("button[data-action=grant]").click()
            item.locator("input[name=source]").fill("电话确认")
            item.locator("input[name=note]").fill("2026-12-07 来电录音 #88")
            item.locator("button[type=submit]").click()
            # The detail reloads: granted, with its source, and on the timeline.
            page.locator(".consents li[data-purpose=sms_marketing] .ok").wait_for()
            assert (
                "电话确认" in page.locator(".consents li[data-purpose=sms_marketing]").inner_text()
            )
            assert "同意" in page.locator("#detail .timeline").first.inner_text()
            # Sales may not export a person's data: no button for them.
            assert page.locator("#personal-export").count() == 0
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.evaluate("sessionStorage.clear()")
            page.close()
            event = ConsentEvent.objects.for_org(acme).get(contact=lead)
            assert (event.source, event.evidence["note"], event.evidence["recorded_by"]) == (
                "电话确认",
                "2026-12-07 来电录音 #88",
                "bob",
            )
        # An admin exports the person's data from the same detail, on a phone.
        page = browser.new_page(
            viewport={"width": 390, "height": 844}, locale="zh-CN", accept_downloads=True
        )
        page.goto(f"{live_server.url}/workspace/")
        page.fill("input[name=username]", "carol")
        page.fill("input[name=password]", "pw-123456")
        page.click("#login-form button")
        page.locator("#lead-rows tr", has_text="授权1").click()
        with page.expect_download() as download:
            page.click("#personal-export")
        path = tmp_path / "export.json"
        download.value.save_as(path)
        exported = json.loads(path.read_text(encoding="utf-8"))
        assert exported["contact"] == lead.pk
        assert "consent" in json.dumps(exported, ensure_ascii=False).lower()
        browser.close()
