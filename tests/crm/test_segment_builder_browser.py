"""The segment builder as sales use it, in Chromium on a desktop and on a phone: values are
picked from the API's choices with Chinese labels (never typed in English), an incomplete
row says so under itself instead of the API's `all[0].value: '' is not a value of 'gender'`,
and an invalid value is reported under its own row."""

from __future__ import annotations

import re

import pytest

from crm.models import Contact

VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})


def test_the_fields_api_lists_choices_with_labels_in_the_requests_language(sales_bob):
    client = sales_bob.client()
    fields = {f["field"]: f for f in client.get("/api/v1/segments/fields").json()["fields"]}
    assert {c["value"]: c["label"] for c in fields["gender"]["choices"]} == {
        "female": "女",
        "male": "男",
        "unknown": "未知",
    }
    assert [c["label"] for c in fields["consent.sms_marketing"]["choices"]] == ["已授权", "未授权"]
    english = client.get("/api/v1/segments/fields", HTTP_ACCEPT_LANGUAGE="en").json()["fields"]
    gender = next(f for f in english if f["field"] == "gender")
    assert [c["label"] for c in gender["choices"]] == ["Female", "Male", "Unknown"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_build_a_segment_with_pickers_and_see_errors_under_the_field(
    live_server, acme, sales_bob
):
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch_chromium

    Contact.objects.for_org(acme).create(org=acme, nickname="甲", gender="female", status="won")
    Contact.objects.for_org(acme).create(org=acme, nickname="乙", gender="male")
    Contact.objects.for_org(acme).create(org=acme, nickname="丙", gender="male", status="lost")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in VIEWPORTS:
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.wait_for_selector("#app:not([hidden])")
            page.click(".tabs button[data-tab=segments]")
            page.click("#seg-add")
            row = page.locator("#seg-rows .seg-row").nth(0)
            # A new gender row asks for a value under itself; no developer message anywhere.
            row.locator(".field-err").filter(has_text="请选择值").wait_for()
            panel = page.locator("[data-panel=segments]")
            assert "is not a value" not in panel.inner_text()
            picker = row.locator("select[name=value]")
            assert picker.locator("option").all_inner_texts() == ["请选择", "女", "男", "未知"]
            picker.select_option(label="男")
            page.locator("#seg-count").filter(has_text=re.compile(r"^2$")).wait_for()
            assert row.locator(".field-err").inner_text() == ""
            # 属于 on status: a multi-picker of Chinese labels.
            page.click("#seg-add")
            second = page.locator("#seg-rows .seg-row").nth(1)
            second.locator("select[name=field]").select_option(label="状态")
            second.locator("select[name=op]").select_option(label="属于")
            second.locator("select[name=value]").select_option(label=["已流失", "已成交"])
            page.locator("#seg-count").filter(has_text=re.compile(r"^1$")).wait_for()
            # An invalid value (介于 needs two ages) is reported under its own row.
            page.click("#seg-add")
            third = page.locator("#seg-rows .seg-row").nth(2)
            third.locator("select[name=field]").select_option(label="年龄")
            third.locator("select[name=op]").select_option(label="介于")
            third.locator("input[name=value]").fill("18")
            third.locator(".field-err").filter(has_text="值无效").wait_for()
            assert second.locator(".field-err").inner_text() == ""
            assert "all[" not in panel.inner_text()
            third.locator("input[name=value]").fill("18, 99")
            page.locator("#seg-count").filter(has_text=re.compile(r"^0$")).wait_for()
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()
