"""An admin edits a lead's profile (gender, age, province, city, custom attributes) in the
workspace's lead panel with pickers; the API's field errors show under the field; the saved
profile, the re-score and the timeline's profile item are what the page then shows. Sales see
the form only on leads the API lets them edit. Chromium at 1280×800 and 390×844."""

from __future__ import annotations

import pytest

from crm.demo import seed_scoring_model
from crm.models import Contact
from crm.services.events import event_record
from crm.services.scoring import contact_rescore
from tests.factories import ContactFactory
from tests.support.browser import launch_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _sign_in(browser, live_server, username, viewport):
    page = browser.new_page(viewport=viewport, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/workspace/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")
    return page, errors


def _lead(acme, nickname, **extra):
    contact = ContactFactory(
        org=acme,
        nickname=nickname,
        gender="unknown",
        birth_year=None,
        province="",
        city="",
        **extra,
    )
    event_record(contact=contact, type="coupon.claim", props={})  # 领券: 10
    contact_rescore(contact=contact)
    return contact


@pytest.mark.django_db(transaction=True)
def test_an_admin_edits_a_leads_profile_and_sees_it_rescored_on_the_timeline(
    live_server, acme, admin_carol, sales_bob, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM between page steps
    seed_scoring_model(acme)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for i, viewport in enumerate(
            ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
        ):
            lead = _lead(acme, f"资料{i}")
            page, errors = _sign_in(browser, live_server, "carol", viewport)
            page.locator("#lead-rows tr", has_text=f"资料{i}").click()
            page.locator("#detail h3", has_text="评分 10").wait_for()
            page.click("#profile-edit")
            form = page.locator("form.profile-edit")
            # The gender picker offers the choices in Chinese.
            options = form.locator("select[name=gender] option").all_inner_texts()
            assert options == ["女", "男", "未知"]
            # An age the API refuses comes back under the age field.
            form.locator("input[name=age]").evaluate("e => e.removeAttribute('max')")
            form.locator("input[name=age]").fill("200")
            form.locator("button[type=submit]").click()
            form.locator(".field-err[data-for=age]").filter(has_text="120").wait_for()
            assert Contact.objects.for_org(acme).get(pk=lead.pk).birth_year is None

            form.locator("select[name=gender]").select_option(label="女")
            form.locator("input[name=age]").fill("30")
            form.locator("select[name=province]").select_option(label="上海")
            form.locator("input[name=city]").fill("上海")
            form.locator("button[data-action=add-attr]").click()
            form.locator(".pf-attr input[name=attr-key]").last.fill("肤质")
            form.locator(".pf-attr input[name=attr-value]").last.fill("干性")
            form.locator("button[type=submit]").click()

            # The panel reloads: the new profile, the re-score and why, on the timeline.
            page.locator("#detail h3", has_text="评分 60").wait_for()
            facts = page.locator("#detail .facts").inner_text()
            assert "女" in facts and "30岁" in facts and "上海 上海" in facts
            assert "肤质：干性" in page.locator("#detail .lead-attrs").inner_text()
            timeline = page.locator("#detail .timeline").first.inner_text()
            assert "资料修改：" in timeline and "（carol）" in timeline
            for name in ("性别", "年龄", "省份", "城市", "自定义属性"):
                assert name in timeline
            assert "评分变化：10 → 60（B） · 因资料修改" in timeline
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1

            # Removing the custom attribute sends it as null.
            page.click("#profile-edit")
            form = page.locator("form.profile-edit")
            form.locator("button[data-action=remove-attr]").click()
            form.locator("button[type=submit]").click()
            page.locator("#detail .timeline li", has_text="资料修改：自定义属性").wait_for()
            assert page.locator("#detail .lead-attrs").count() == 0
            assert not errors, errors
            page.close()

            lead.refresh_from_db()
            assert (lead.gender, lead.province, lead.city, lead.attributes) == (
                "female",
                "上海",
                "上海",
                {},
            )
            assert lead.score == 60

        # Sales: the form on a pool lead, none on a lead another salesperson owns.
        from tests.conftest import _staff

        dave = _staff(acme, "dave", "sales")
        _lead(acme, "别人的", owner=dave.user)
        _lead(acme, "公海的")
        page, errors = _sign_in(browser, live_server, "bob", {"width": 390, "height": 844})
        page.locator("#lead-rows tr", has_text="公海的").click()
        page.locator("#profile-edit").wait_for()
        page.locator("#lead-rows tr", has_text="别人的").click()
        page.locator("#detail h2", has_text="别人的").wait_for()
        assert page.locator("#profile-edit").count() == 0
        assert not errors, errors
        browser.close()
