"""An admin edits a scoring rule's name, points and on/off in the workspace without JSON,
with the API's field errors under the field; sales see the rules read-only (Chromium, phone)."""

from __future__ import annotations

import pytest

from crm.demo import seed_scoring_model
from crm.models import ScoringRule
from tests.support.browser import launch_chromium


def _open_stats(browser, live_server, username):
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/workspace/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")
    page.click(".tabs button[data-tab=stats]")
    page.wait_for_selector("#rule-rows tr")
    return page, errors


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_edits_a_rules_points_and_switches_it_off_sales_only_read(
    live_server, acme, admin_carol, sales_bob, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM between page steps
    seed_scoring_model(acme)
    rule = ScoringRule.objects.for_org(acme).order_by("id").first()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = _open_stats(browser, live_server, "bob")
        assert page.locator("#rule-rows button[data-action=edit]").count() == 0
        page.close()

        page, errors = _open_stats(browser, live_server, "carol")
        row = page.locator(f"#rule-rows tr[data-rule='{rule.pk}']")
        row.locator("button[data-action=edit]").click()
        form = page.locator("form.rule-edit")
        # A blank name comes back from the API as a field error under the name.
        form.locator("input[name=name]").evaluate("e => e.removeAttribute('required')")
        form.locator("input[name=name]").fill("")
        form.locator("button[type=submit]").click()
        form.locator(".field-err[data-for=name]").filter(has_text="空").wait_for()
        form.locator("input[name=name]").fill("女性加分")
        form.locator("input[name=points]").fill("30")
        form.locator("input[name=is_active]").uncheck()
        form.locator("button[type=submit]").click()
        row.filter(has_text="女性加分（已停用）").wait_for()
        assert "+30" in row.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        assert not errors, errors
        browser.close()
    rule.refresh_from_db()
    assert (rule.name, rule.points, rule.is_active) == ("女性加分", 30, False)
