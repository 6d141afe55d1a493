"""Placeholders (issue 15): every placeholder a template uses is known and filled when sent, or
refused when the template (or the campaign) is saved; ``{nickname}`` falls back when a person
has none; a message with an unfilled placeholder is never sent (suppressed, with a reason).

Before: the builder's copy 「{nickname}您好…」 went out with the braces, to everyone."""

import pytest
from django.utils import timezone

from campaigns.models import ConsoleSms, Delivery
from campaigns.services.placeholders import NICKNAME_FALLBACK
from campaigns.services.sending import deliveries_send_due
from core import pii
from crm.services.consent import consent_grant
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _template(client, body, **extra):
    return client.post(
        "/api/v1/templates",
        {"name": "文案", "channel": "sms", "message_class": "marketing", "body": body, **extra},
        format="json",
    )


@pytest.mark.parametrize(
    ("body", "extra", "field"),
    [
        ("{nicknam}您好，今晚开播", {}, "body"),  # a typo is an unknown placeholder
        ("线索{lead}已达到{grade}级", {}, "body"),  # staff-only placeholders in a customer copy
        ("今晚开播{}", {}, "body"),  # positional
        ("今晚开播{link.url}", {}, "body"),  # attribute access
        ("今晚开播{link", {}, "body"),  # unbalanced
        ("{nickname}您好", {"param_names": ["nickname", "link"]}, "param_names"),
        ("{nickname}您好{link}", {"param_names": ["nickname"]}, "param_names"),
    ],
)
def test_a_template_with_a_placeholder_nobody_fills_is_refused_when_saved(
    sales_bob, body, extra, field
):
    answer = _template(sales_bob.client(), body, **extra)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["code"] == "unknown_placeholder"
    assert field in answer.json()["fields"]


def test_known_placeholders_are_accepted(sales_bob):
    answer = _template(sales_bob.client(), "{nickname}您好，今晚8点开播：{link}")
    assert answer.status_code == 201, answer.json()


@pytest.fixture
def audience(acme):
    ProviderAccountFactory(org=acme, sign_name="千面")
    named = ContactFactory(org=acme, nickname="小红", city="上海")
    nameless = ContactFactory(org=acme, nickname="", city="上海")
    for i, contact in enumerate((named, nameless)):
        add_phone(contact, f"1360000000{i}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
    return named, nameless


def _campaign(client, template_id, **extra):
    return client.post(
        "/api/v1/campaigns",
        {"name": "今晚", "channel": "sms", "variants": [{"template": template_id}], **extra},
        format="json",
    )


def test_a_campaign_that_cannot_fill_its_templates_is_refused(sales_bob, audience):
    client = sales_bob.client()
    with_link = _template(client, "{nickname}您好，今晚开播：{link}").json()
    answer = _campaign(client, with_link["id"])
    assert answer.status_code == 400
    assert answer.json()["code"] == "unfilled_placeholder"
    assert "link_url" in answer.json()["fields"]
    with_name = _template(client, "「{name}」今晚开播").json()
    answer = _campaign(client, with_name["id"])
    assert answer.status_code == 400
    assert "name" in answer.json()["fields"]["params"]
    assert _campaign(client, with_name["id"], params={"name": "春季上新"}).status_code == 201


def _launch(client, campaign_id, capture):
    with capture(execute=True):
        assert client.post(f"/api/v1/campaigns/{campaign_id}/launch").status_code == 200
    deliveries_send_due()


def test_nickname_is_each_persons_with_a_fallback(
    sales_bob, acme, audience, daytime, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    template = _template(client, "{nickname}您好，今晚8点开播").json()
    campaign = _campaign(client, template["id"]).json()
    _launch(client, campaign["id"], django_capture_on_commit_callbacks)
    texts = dict(ConsoleSms.objects.for_org(acme).values_list("phone_masked", "text"))
    assert texts == {
        "136****0000": "【千面】小红您好，今晚8点开播 拒收请回复R",
        "136****0001": f"【千面】{NICKNAME_FALLBACK}您好，今晚8点开播 拒收请回复R",
    }


def test_the_campaigns_own_nickname_param_is_the_fallback(
    sales_bob, acme, audience, daytime, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    template = _template(client, "{nickname}您好，今晚8点开播").json()
    campaign = _campaign(client, template["id"], params={"nickname": "朋友"}).json()
    _launch(client, campaign["id"], django_capture_on_commit_callbacks)
    texts = sorted(ConsoleSms.objects.for_org(acme).values_list("text", flat=True))
    assert texts == [
        "【千面】小红您好，今晚8点开播 拒收请回复R",  # a person's own nickname wins
        "【千面】朋友您好，今晚8点开播 拒收请回复R",
    ]


def test_a_message_with_an_unfilled_placeholder_is_never_sent(acme, daytime):
    """Rows that got past every save-time check (a journey whose trigger lacks a room, a
    service send called without its code, a row edited in the admin) are suppressed at
    send with the reason and the names left empty."""
    account = ProviderAccountFactory(org=acme, sign_name="千面")
    template = TemplateFactory(
        org=acme, message_class="service", body="您预约的「{room}」{start}开播：{link}"
    )
    person = ContactFactory(org=acme)
    row = Delivery.objects.for_org(acme).create(
        org=acme,
        contact=person,
        channel="sms",
        message_class="service",
        template=template,
        account=account,
        key="svc:unfilled",
        to_encrypted=pii.encrypt("13600000009"),
        to_hash=pii.lookup_hash("phone", "13600000009"),
        params={"room": "春季上新", "start": ""},
        due_at=timezone.now(),
    )
    deliveries_send_due()
    row.refresh_from_db()
    assert (row.status, row.reason) == ("suppressed", "missing_param")
    assert row.error == "missing: start, link"
    assert not ConsoleSms.objects.for_org(acme).exists()
