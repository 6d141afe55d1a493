"""The one send policy: platform rules, consent, opt-outs, quiet hours, caps — at planning,
at send time and at template creation."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.models import (
    Channel,
    ConsoleSms,
    Delivery,
    DeliveryStatus,
    MarketingSendCount,
    MessageClass,
    MessagingPolicy,
    SuppressionReason,
)
from campaigns.services import policy
from campaigns.services.campaigns import campaign_create, campaign_launch
from campaigns.services.sending import deliveries_send_due
from core import pii
from crm.services.consent import consent_grant, consent_withdraw
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone, beijing
from tests.factories import ContactFactory
from tests.wechat.factories import mini_program, official_account
from wechat.models import MpSubscribeConsent, WeChatFollower, WeChatServiceWindow

pytestmark = pytest.mark.django_db

OPENID = "o-follower-0001"


@pytest.fixture
def account(acme):
    return ProviderAccountFactory(org=acme, sign_name="千面")


@pytest.fixture
def person(acme):
    contact = ContactFactory(org=acme, gender="female")
    add_phone(contact, "13812345678")
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    consent_grant(contact=contact, purpose="wechat_marketing", source="test")
    return contact


def _candidate(org, person, template, channel=None, **extra):
    extra.setdefault("to_hash", pii.lookup_hash("phone", "13812345678"))
    return policy.Candidate(
        org_id=org.pk,
        contact_id=person.pk,
        channel=channel or template.channel,
        template=template,
        sign_name="千面",
        **extra,
    )


def _decide(*candidates, at):
    return policy.candidates_evaluate(list(candidates), now=at)


def _sms_campaign(org, account, template):
    return campaign_create(
        org=org,
        name="测试",
        channel=Channel.SMS,
        variants=[{"template": template}],
        provider_account=account,
    )


# -- WeChat platform rules -----------------------------------------------------------------------


def test_marketing_through_wechat_template_is_refused_at_creation(sales_bob):
    response = sales_bob.client().post(
        "/api/v1/templates",
        {
            "name": "大促",
            "channel": "wechat_template",
            "message_class": "marketing",
            "body": "全场5折",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "marketing_not_allowed"


def test_marketing_through_wechat_template_is_refused_at_send(acme, person):
    oa = official_account(acme)
    # A row that slipped past creation (e.g. edited in the admin) is still refused.
    template = TemplateFactory(org=acme, channel=Channel.WECHAT_TEMPLATE, message_class="marketing")
    openid_hash = pii.lookup_hash("openid", OPENID)
    WeChatFollower.unscoped.create(
        org=acme, account=oa, openid_hash=openid_hash, openid_encrypted=pii.encrypt(OPENID)
    )
    decision = _decide(
        _candidate(acme, person, template, to_hash=openid_hash, wechat_account_id=oa.pk),
        at=beijing(10),
    )[0]
    assert decision == policy.Decision.suppress(SuppressionReason.CHANNEL_RULE)


def _window(org, oa, last, opened_by="message", sent=0):
    return WeChatServiceWindow.unscoped.create(
        org=org,
        account=oa,
        openid_hash=pii.lookup_hash("openid", OPENID),
        last_inbound_at=last,
        opened_by=opened_by,
        sent_count=sent,
    )


def test_wechat_customer_message_outside_48_hours_is_refused(acme, person):
    oa = official_account(acme)
    openid_hash = pii.lookup_hash("openid", OPENID)
    WeChatFollower.unscoped.create(
        org=acme, account=oa, openid_hash=openid_hash, openid_encrypted=pii.encrypt(OPENID)
    )
    template = TemplateFactory(org=acme, channel=Channel.WECHAT_CUSTOMER, message_class="service")
    now = beijing(10)
    candidate = _candidate(acme, person, template, to_hash=openid_hash, wechat_account_id=oa.pk)
    window = _window(acme, oa, now - timedelta(hours=49))
    assert _decide(candidate, at=now)[0].reason == SuppressionReason.OUTSIDE_WINDOW
    window.last_inbound_at = now - timedelta(hours=47)
    window.save()
    assert _decide(candidate, at=now)[0].action == "send"
    # At most 5 in the window: the 6th of a batch is refused.
    decisions = _decide(*[candidate] * 6, at=now)
    assert [d.action for d in decisions] == ["send"] * 5 + ["suppress"]
    assert decisions[-1].reason == SuppressionReason.WINDOW_QUOTA


def test_wechat_sends_stop_when_the_person_unfollows(acme, person):
    oa = official_account(acme)
    openid_hash = pii.lookup_hash("openid", OPENID)
    follower = WeChatFollower.unscoped.create(
        org=acme, account=oa, openid_hash=openid_hash, openid_encrypted=pii.encrypt(OPENID)
    )
    template = TemplateFactory(org=acme, channel=Channel.WECHAT_TEMPLATE, message_class="service")
    candidate = _candidate(acme, person, template, to_hash=openid_hash, wechat_account_id=oa.pk)
    assert _decide(candidate, at=beijing(10))[0].action == "send"
    follower.subscribed = False
    follower.save()
    assert _decide(candidate, at=beijing(10))[0].reason == SuppressionReason.UNSUBSCRIBED


def test_mass_messages_reach_a_follower_at_most_4_times_a_month(acme, person):
    oa = official_account(acme)
    openid_hash = pii.lookup_hash("openid", OPENID)
    WeChatFollower.unscoped.create(
        org=acme, account=oa, openid_hash=openid_hash, openid_encrypted=pii.encrypt(OPENID)
    )
    template = TemplateFactory(org=acme, channel=Channel.WECHAT_MASS, message_class="marketing")
    now = beijing(10, days=0)
    month_start = now.replace(day=1, hour=9)
    for i in range(4):
        Delivery.objects.for_org(acme).create(
            org=acme,
            contact=person,
            channel=Channel.WECHAT_MASS,
            message_class="marketing",
            template=template,
            key=f"mass-{i}",
            status=DeliveryStatus.SENT,
            sent_at=month_start + timedelta(minutes=i),
        )
    candidate = _candidate(acme, person, template, to_hash=openid_hash, wechat_account_id=oa.pk)
    # The org caps are raised so only the platform's monthly quota can refuse.
    from campaigns.models import MessagingPolicy

    MessagingPolicy.objects.for_org(acme).create(org=acme, cap_per_day=50, cap_per_week=50)
    decision = _decide(candidate, at=max(now, month_start + timedelta(hours=1)))[0]
    assert decision.reason == SuppressionReason.MASS_QUOTA


def test_mini_program_subscribe_needs_an_unused_consent_and_uses_it_up(acme, person):
    mp = mini_program(acme)
    template = TemplateFactory(
        org=acme, channel=Channel.MP_SUBSCRIBE, message_class="service", provider_template_id="T1"
    )
    openid_hash = pii.lookup_hash("openid", OPENID)
    candidate = _candidate(acme, person, template, to_hash=openid_hash, wechat_account_id=mp.pk)
    assert _decide(candidate, at=beijing(10))[0].reason == SuppressionReason.NO_SUBSCRIPTION
    MpSubscribeConsent.unscoped.create(org=acme, account=mp, contact=person, template_id="T1")
    decisions = _decide(candidate, candidate, at=beijing(10))
    assert [d.action for d in decisions] == ["send", "suppress"]  # one consent, one send


# -- SMS rules -----------------------------------------------------------------------------------


def test_quiet_hours_defer_marketing_sms_to_the_next_window_then_send(
    acme, account, person, django_capture_on_commit_callbacks
):
    template = TemplateFactory(org=acme, provider_account=account)
    campaign = _sms_campaign(acme, account, template)
    with time_machine.travel(beijing(22, 30), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            campaign_launch(campaign=campaign)
        row = Delivery.objects.for_org(acme).get(campaign=campaign)
        assert row.status == DeliveryStatus.PENDING and row.deferred
        assert row.due_at == beijing(8, days=1)  # deferred, not dropped
        assert ConsoleSms.objects.for_org(acme).count() == 0
    with time_machine.travel(beijing(8, 1, days=1), tick=False):
        deliveries_send_due()
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT
    assert ConsoleSms.objects.for_org(acme).count() == 1


def test_frequency_cap_suppresses_the_second_marketing_message_of_the_day(
    acme, account, person, django_capture_on_commit_callbacks
):
    template = TemplateFactory(org=acme, provider_account=account)
    with time_machine.travel(beijing(10), tick=True):
        for _ in range(2):
            campaign = _sms_campaign(acme, account, template)
            with django_capture_on_commit_callbacks(execute=True):
                campaign_launch(campaign=campaign)
    rows = Delivery.objects.for_org(acme).order_by("id")
    assert [(r.status, r.reason) for r in rows] == [
        (DeliveryStatus.SENT, ""),
        (DeliveryStatus.SUPPRESSED, SuppressionReason.FREQUENCY_CAP),
    ]


def test_consent_withdrawn_between_planning_and_sending_suppresses(
    acme, account, person, django_capture_on_commit_callbacks
):
    template = TemplateFactory(org=acme, provider_account=account)
    campaign = _sms_campaign(acme, account, template)
    with time_machine.travel(beijing(10), tick=True):
        campaign_launch(campaign=campaign)  # planned; the send task has not run yet
        row = Delivery.objects.for_org(acme).get(campaign=campaign)
        assert row.status == DeliveryStatus.PENDING
        consent_withdraw(contact=person, purpose="sms_marketing", source="test")
        deliveries_send_due()
    row.refresh_from_db()
    assert (row.status, row.reason) == (DeliveryStatus.SUPPRESSED, SuppressionReason.NO_CONSENT)
    assert ConsoleSms.objects.for_org(acme).count() == 0


def test_service_messages_skip_caps_and_quiet_hours(acme, account, person):
    marketing = TemplateFactory(org=acme, provider_account=account)
    service = TemplateFactory(org=acme, provider_account=account, message_class="service")
    late = beijing(21, 30)
    # One marketing message already went out today (the cap's counter says so).
    MarketingSendCount.objects.for_org(acme).create(
        org=acme, contact=person, period=policy.cap_periods(late)[0], count=1
    )
    decisions = _decide(
        _candidate(acme, person, marketing), _candidate(acme, person, service), at=late
    )
    assert decisions[0].reason == SuppressionReason.FREQUENCY_CAP
    assert decisions[1].action == "send"


def test_service_templates_never_carry_marketing_copy(sales_bob):
    response = sales_bob.client().post(
        "/api/v1/templates",
        {
            "name": "提醒",
            "channel": "sms",
            "message_class": "service",
            "body": "您预约的直播开始了，限时秒杀低至5折",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "marketing_copy_in_service"
    assert "body" in response.json()["fields"]


def test_tencent_banned_marketing_categories_must_go_through_wechat(sales_bob, acme):
    tencent = ProviderAccountFactory(org=acme, provider="tencent", is_default=False)
    response = sales_bob.client().post(
        "/api/v1/templates",
        {
            "name": "直播推广",
            "channel": "sms",
            "message_class": "marketing",
            "body": "今晚直播",
            "content_category": "live_promotion",
            "provider_account": tencent.pk,
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "use_wechat"


def test_opt_out_replies_withdraw_consent_and_record_the_phone(anon, acme, account, person):
    for word, expected in (("你好", False), ("TD", True)):
        response = anon.post(
            f"/hooks/sms/console/replies?token={account.webhook_token}",
            {"phone": "13812345678", "text": word},
            format="json",
        )
        assert response.status_code == 200
        from crm.selectors import consent_granted

        assert consent_granted(person, "sms_marketing") is not expected


def test_forged_hooks_are_refused(anon, account):
    for path in ("/hooks/sms/console/replies", "/hooks/sms/tencent/receipts"):
        response = anon.post(f"{path}?token=forged", [{"phone": "1", "text": "T"}], format="json")
        assert response.status_code == 403


def test_quiet_hours_window_is_beijing_time():
    assert policy.next_window_start(beijing(7, 59), 8, 21) == beijing(8)
    assert policy.next_window_start(beijing(12), 8, 21) is None
    assert policy.next_window_start(beijing(21), 8, 21) == beijing(8, days=1)
    assert MessageClass.SERVICE != MessageClass.MARKETING
    assert timezone.is_aware(beijing(8))


def _launch_all(org, account, template, n, capture, *, send=True):
    campaigns = []
    for _ in range(n):
        campaign = _sms_campaign(org, account, template)
        campaign_launch(campaign=campaign)  # planned only: the sender has not run
        campaigns.append(campaign)
    if send:
        deliveries_send_due()
    return campaigns


def test_two_campaigns_claimed_in_one_batch_respect_the_daily_cap(
    acme, account, person, django_capture_on_commit_callbacks
):
    template = TemplateFactory(org=acme, provider_account=account)
    with time_machine.travel(beijing(10), tick=True):
        _launch_all(acme, account, template, 2, django_capture_on_commit_callbacks)
    rows = Delivery.objects.for_org(acme).order_by("id")
    assert sorted((r.status, r.reason) for r in rows) == [
        (DeliveryStatus.SENT, ""),
        (DeliveryStatus.SUPPRESSED, SuppressionReason.FREQUENCY_CAP),
    ]
    assert ConsoleSms.objects.for_org(acme).count() == 1


def test_caps_count_beijing_calendar_days_and_weeks(
    acme, account, person, django_capture_on_commit_callbacks
):
    MessagingPolicy.objects.for_org(acme).create(org=acme, cap_per_day=1, cap_per_week=2)
    template = TemplateFactory(org=acme, provider_account=account)
    # A Monday evening and the next morning: 11 h apart, but two Beijing days.
    monday = beijing(20, 50) - timedelta(days=beijing(12).weekday())
    sends = [monday, monday + timedelta(hours=11, minutes=20), monday + timedelta(days=2)]
    for at in sends:
        with time_machine.travel(at, tick=False):
            _launch_all(acme, account, template, 1, django_capture_on_commit_callbacks)
    rows = Delivery.objects.for_org(acme).order_by("id")
    assert [(r.status, r.reason) for r in rows] == [
        (DeliveryStatus.SENT, ""),
        (DeliveryStatus.SENT, ""),  # the next Beijing day: a fresh daily slot
        (DeliveryStatus.SUPPRESSED, SuppressionReason.FREQUENCY_CAP),  # week cap (2) reached
    ]
    counts = dict(
        MarketingSendCount.objects.for_org(acme).values_list("period", "count").order_by("id")
    )
    day0, week0 = policy.cap_periods(monday)
    assert counts[day0] == 1 and counts[week0] == 2
    # The day slot of the refused third send was given back: only two messages went out.
    assert sum(n for p, n in counts.items() if "W" not in p) == 2


def test_service_errors_speak_the_request_language(sales_bob, acme):
    body = {
        "name": "优惠提醒",
        "channel": "wechat_template",
        "message_class": "marketing",
        "body": "限时特价",
    }
    client = sales_bob.client()
    chinese = client.post("/api/v1/templates", body, format="json")
    english = client.post("/api/v1/templates", body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert chinese.status_code == english.status_code == 400
    assert chinese.json()["code"] == english.json()["code"] == "marketing_not_allowed"
    assert chinese.json()["message"] == "公众号模板消息只能用于服务通知，营销内容请使用群发或短信"
    assert english.json()["message"].startswith("WeChat template messages are for service")
    assert english.json()["fields"]["message_class"] == [
        "WeChat template messages are for service notices only"
    ]
    # Interpolated messages too.
    service = {**body, "channel": "sms", "message_class": "service"}
    response = client.post("/api/v1/templates", service, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["fields"]["body"] == [
        "A service notice cannot use marketing words: 特价、限时"
    ]
    # And the APIs' own validation errors.
    account = ProviderAccountFactory(org=acme)
    campaign = _sms_campaign(acme, account, TemplateFactory(org=acme))
    path = f"/api/v1/campaigns/{campaign.pk}/deliveries?status=lost"
    assert client.get(path).json()["fields"]["status"] == ["未知状态"]
    english = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 400
    assert [m.lower() for m in english.json()["fields"]["status"]] == ["unknown status"]


def test_cap_counters_no_cap_can_read_are_pruned(acme, person):
    with time_machine.travel(beijing(10, days=-9), tick=False):
        old = MarketingSendCount.objects.for_org(acme).create(
            org=acme, contact=person, period="old", count=1
        )
    recent = MarketingSendCount.objects.for_org(acme).create(
        org=acme, contact=person, period=policy.cap_periods(timezone.now())[1], count=1
    )
    assert policy.cap_counts_prune() == 1
    remaining = MarketingSendCount.objects.for_org(acme).values_list("pk", flat=True)
    assert list(remaining) == [recent.pk] and old.pk not in remaining
