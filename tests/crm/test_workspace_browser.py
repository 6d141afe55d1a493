"""The sales workspace in Chromium: sign in, the pool sorted by score, a lead's breakdown,
a segment's live count, the leads exported as CSV and Excel, all on a phone-sized screen too."""

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
            page.select_option("#seg-rows select[name=value]", label="女")
            # (no wait_for_function: the strict CSP forbids eval)
            page.locator("#seg-count").filter(has_text=re.compile(r"^1$")).wait_for()
            # Export runs as a job: progress, then the download link, named by the server.
            page.click("button[data-tab=leads]")
            formats = [("#export", "leads.csv"), ("#export-xlsx", "leads.xlsx")]
            for button, filename in formats if viewport["width"] > 1000 else formats[1:]:
                page.click(button)
                page.wait_for_selector("#job-download:not([hidden])")
                assert "导出完成：2 行" in page.locator("#job-text").inner_text()
                with page.expect_download() as download:
                    page.click("#job-download")
                assert download.value.suggested_filename == filename
            if viewport["width"] > 1000:
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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_edits_a_teams_members_and_rules_in_chinese(
    live_server, acme, admin_carol, sales_bob, host_alice
):
    """carol renames 华东组, adds dave, gives it a 10-minute SLA with hand-on to the next
    member, and routes a room to it; bob then sees the same team read-only."""
    from playwright.sync_api import sync_playwright

    from core.models import Role
    from crm.models import AssignmentRule, SalesTeam
    from crm.services.teams import team_save
    from tests.conftest import _staff
    from tests.factories import RoomFactory

    dave = _staff(acme, "dave", Role.SALES)
    team = team_save(org_id=acme.pk, name="华东组", member_ids=[sales_bob.user.pk])
    team_save(org_id=acme.pk, name="华南组", member_ids=[])
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())

        def sign_in(username: str) -> None:
            page.goto(f"{live_server.url}/workspace/")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.locator("#whoami").filter(has_text=username).wait_for()
            page.click("button[data-tab=teams]")
            page.wait_for_selector(f'#team-list li[data-team="{team.pk}"]')

        sign_in("carol")
        row = page.locator(f'#team-list li[data-team="{team.pk}"]')
        assert "跟进时限：组织默认" in row.inner_text() and "退回公海" in row.inner_text()
        row.locator("button[data-action=edit]").click()
        form = row.locator("form[data-form=edit]")
        # A name another team has: the field's message, in Chinese, from the API.
        form.locator("input[name=name]").fill("华南组")
        form.locator("button[type=submit]").click()
        form.locator(".err").filter(has_text="团队名称：").wait_for()
        assert "已存在" in form.locator(".err").inner_text()

        form.locator("input[name=name]").fill("华东一组")
        form.locator(f'input[name=members][value="{dave.user.pk}"]').check()
        form.locator("input[name=hot_lead_sla_minutes]").fill("10")
        form.locator("select[name=lapse_action]").select_option("next_member")
        form.locator("button[type=submit]").click()
        row = page.locator(f'#team-list li[data-team="{team.pk}"]')
        row.filter(has_text="华东一组").wait_for()
        text = row.inner_text()
        assert "跟进时限：10 分钟" in text and "超时未跟进：转给团队下一位成员" in text
        assert "bob" in text and "dave" in text

        # Remove bob again.
        row.locator("button[data-action=edit]").click()
        row.locator(f'input[name=members][value="{sales_bob.user.pk}"]').uncheck()
        row.locator("button[type=submit]").click()
        page.locator(f'#team-list li[data-team="{team.pk}"] .members').filter(
            has_text=re.compile(r"^\s*dave$")
        ).wait_for()

        # Route the room to the team, then move the rule up the order.
        assert "还没有分配规则" in page.locator("#team-rules").inner_text()
        new_rule = page.locator("#team-rules form[data-form=new]")
        new_rule.locator("input[name=room]").fill(str(room.pk))
        new_rule.locator("select[name=team]").select_option(str(team.pk))
        new_rule.locator("button[type=submit]").click()
        line = page.locator("#rule-list li[data-rule]").filter(has_text="华东一组")
        line.wait_for()
        assert f"优先级 100：直播间 #{room.pk} → 华东一组" in line.inner_text()
        rule_id = line.get_attribute("data-rule")
        line.locator("button[data-action=edit]").click()
        line = page.locator(f'#rule-list li[data-rule="{rule_id}"]')
        line.locator("input[name=priority]").fill("3")
        line.locator("button[type=submit]").click()
        line.filter(has_text="优先级 3：").wait_for()
        page.evaluate("sessionStorage.clear()")

        # A sales rep sees teams and rules, and cannot change them.
        sign_in("bob")
        page.locator("#rule-list li[data-rule]").first.wait_for()
        assert page.locator("#team-form").is_hidden()
        assert page.locator("[data-panel=teams] button[data-action]").count() == 0
        assert page.locator("#team-rules form").count() == 0
        assert "超时未跟进：转给团队下一位成员" in page.locator("#team-list").inner_text()
        assert not errors, errors
        browser.close()
    # (the ORM only outside Playwright's event loop)
    team.refresh_from_db()
    assert (team.name, team.hot_lead_sla_minutes, team.lapse_action) == (
        "华东一组",
        10,
        "next_member",
    )
    assert list(team.members.values_list("username", flat=True)) == ["dave"]
    rule = AssignmentRule.objects.for_org(acme).get()
    assert (str(rule.pk), rule.team_id, rule.room_id, rule.priority) == (
        rule_id,
        team.pk,
        room.pk,
        3,
    )
    assert SalesTeam.objects.for_org(acme).count() == 2
