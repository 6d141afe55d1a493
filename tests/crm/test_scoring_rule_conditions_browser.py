"""An admin edits a scoring rule's condition with the segment builder's pickers (no JSON): the
rule's condition comes back as rows, a row without a value is marked under the row, a live
preview says how many leads match and how many would change grade, and saving stores the
condition (a behaviour rule keeps what it sums). Chromium at 1280×800 and 390×844."""

from __future__ import annotations

import pytest

from crm.demo import seed_scoring_model
from crm.models import ScoringRule
from crm.services.scoring import contact_rescore
from tests.factories import ContactFactory
from tests.support.browser import launch_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _open_rule(browser, live_server, viewport, rule):
    page = browser.new_page(viewport=viewport, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/workspace/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")
    page.click(".tabs button[data-tab=stats]")
    page.locator(f"#rule-rows tr[data-rule='{rule.pk}'] button[data-action=edit]").click()
    return page, errors, page.locator("form.rule-edit")


@pytest.mark.django_db(transaction=True)
def test_an_admin_edits_a_rules_condition_with_pickers_and_a_live_preview(
    live_server, acme, admin_carol, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM between page steps
    seed_scoring_model(acme)
    # 女性 20 + 25–35岁 30 = 50 (B): two in 上海, one in 北京.
    for city in ("上海", "上海", "北京"):
        contact = ContactFactory(
            org=acme, gender="female", birth_year=1996, city=city, income_level=""
        )
        contact_rescore(contact=contact)
    female = ScoringRule.objects.for_org(acme).get(name="女性")
    watched = ScoringRule.objects.for_org(acme).get(name="观看≥10分钟")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
            female.condition = {"field": "gender", "op": "eq", "value": "female"}
            female.save(update_fields=["condition"])
            page, errors, form = _open_rule(browser, live_server, viewport, female)
            # The stored condition as picker rows: 性别 等于 女.
            row = form.locator(".seg-row").first
            assert row.locator("[name=field]").input_value() == "gender"
            assert row.locator("[name=op]").input_value() == "eq"
            picked = row.locator("[name=value] option:checked").inner_text()
            assert picked == "女"
            preview = form.locator("#rule-preview")
            preview.filter(has_text="符合条件 3 人").wait_for()
            assert "0 人等级变化" in preview.inner_text()

            # Narrow it to 上海: a row without a value is marked under itself, not sent.
            form.locator("button[data-action=add-attr]").click()
            city = form.locator(".seg-row").nth(1)
            city.locator("[name=field]").select_option("city")
            city.locator("[name=op]").select_option("eq")
            form.locator("button[type=submit]").click()
            city.locator(".field-err").filter(has_text="请填写值").wait_for()
            city.locator("[name=value]").fill("上海")
            preview.filter(has_text="符合条件 2 人").wait_for()
            assert "1 人等级变化（升 0，降 1）" in preview.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            form.locator("button[type=submit]").click()
            page.locator(
                f"#rule-rows tr[data-rule='{female.pk}'] button[data-action=edit]"
            ).wait_for()
            female.refresh_from_db()
            assert female.condition == {
                "all": [
                    {"field": "gender", "op": "eq", "value": "female"},
                    {"field": "city", "op": "eq", "value": "上海"},
                ]
            }

            # A behaviour rule: its event, aggregate and summed property survive an edit.
            page.locator(
                f"#rule-rows tr[data-rule='{watched.pk}'] button[data-action=edit]"
            ).click()
            form = page.locator("form.rule-edit")
            row = form.locator(".seg-row").first
            assert row.locator("[name=event]").input_value() == "room.leave"
            assert row.locator("[name=agg]").input_value() == "sum"
            row.locator("[name=value]").fill("300")
            form.locator("button[type=submit]").click()
            page.locator(
                f"#rule-rows tr[data-rule='{watched.pk}'] button[data-action=edit]"
            ).wait_for()
            watched.refresh_from_db()
            assert watched.condition == {
                "all": [
                    {
                        "event": "room.leave",
                        "agg": "sum",
                        "op": "gte",
                        "value": 300,
                        "window_days": 30,
                        "prop": "watch_seconds",
                    }
                ]
            }
            assert not errors, errors
            page.close()
        browser.close()
