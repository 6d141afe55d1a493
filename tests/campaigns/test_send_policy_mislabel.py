"""Message class by what is sent and to whom, never by a template's label (issue 15, item 1).

Every way the builder, the API or a hand-edited row allows a segment send to be labelled
"service", or a staff notice to be aimed at customers, is tried on every channel; the person
who said no (replied R, or never consented) must receive nothing.

The probe of the issue, first: a segment campaign built on the staff hot-lead template, one
person who replied R a minute earlier. Before the fix the API answered 201 and all five
people — the opted-out one included — got 「【千面】线索{lead}已达到{grade}级，请尽快跟进：{link}」.
"""

import json

import pytest
from django.utils import timezone

from campaigns.demo import seed_org
from campaigns.models import (
    Campaign,
    ConsoleSms,
    Delivery,
    Journey,
    MessageTemplate,
    Variant,
)
from campaigns.services import journeys
from campaigns.services.campaigns import campaign_launch
from campaigns.services.receipts import sms_reply_record
from campaigns.services.sending import deliveries_send_due, service_sms_send
from core import pii
from core.errors import DomainError
from crm.services.consent import consent_grant
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone
from tests.factories import ContactFactory
from tests.wechat.factories import mini_program, official_account, wechat_follower
from wechat.models import MpSubscribeConsent, WeChatServiceWindow

pytestmark = pytest.mark.django_db

CHANNELS = ("sms", "wechat_template", "wechat_customer", "wechat_mass", "mp_subscribe")


def _launch_and_send(campaign, capture):
    with capture(execute=True):
        campaign_launch(campaign=campaign)
    deliveries_send_due()


# -- the probe -----------------------------------------------------------------------------------


def test_probe_a_segment_campaign_on_the_staff_hot_lead_template_reaches_nobody(
    sales_bob, acme, daytime, django_capture_on_commit_callbacks
):
    account = seed_org(acme)
    for i in range(5):
        contact = ContactFactory(org=acme, city="上海")
        add_phone(contact, f"1380000{i:04d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
    client = sales_bob.client()
    reply = client.post(
        f"/hooks/sms/console/replies?token={account.webhook_token}",
        {"phone": "13800000000", "text": "R"},
        format="json",
    )
    assert reply.status_code == 200
    staff = MessageTemplate.objects.for_org(acme).get(key="owner_hot_lead_sms")
    segment = client.post(
        "/api/v1/segments",
        {"name": "上海", "condition": {"field": "city", "op": "eq", "value": "上海"}},
        format="json",
    ).json()
    # The builder's default (文案 A = the staff notice) is refused with a field message…
    created = client.post(
        "/api/v1/campaigns",
        {
            "name": "probe",
            "channel": "sms",
            "segment": segment["id"],
            "variants": [{"template": staff.pk}],
        },
        format="json",
    )
    assert created.status_code == 400
    assert created.json()["code"] == "wrong_template"
    assert "员工通知" in created.json()["fields"]["variants"]["0"]["template"][0]
    # …and the builder no longer offers it (nor any service template) for a segment send.
    offered = client.get("/api/v1/templates?for=campaign&page_size=100").json()["results"]
    assert staff.pk not in {t["id"] for t in offered}
    assert all(t["message_class"] == "marketing" for t in offered)
    # A campaign forced past the builder (admin, old row): the sender refuses every row.
    campaign = Campaign.objects.for_org(acme).create(
        org=acme, name="forced", channel="sms", message_class="service", provider_account=account
    )
    Variant.objects.create(campaign=campaign, name="A", template=staff)
    _launch_and_send(campaign, django_capture_on_commit_callbacks)
    assert ConsoleSms.objects.for_org(acme).count() == 0
    reasons = set(
        Delivery.objects.for_org(acme).filter(campaign=campaign).values_list("reason", flat=True)
    )
    assert reasons <= {"staff_only", "opted_out"}  # the opted-out person: opted_out at planning
    assert set(
        Delivery.objects.for_org(acme)
        .filter(campaign=campaign)
        .values_list("message_class", flat=True)
    ) == {"marketing"}


# -- per channel: a "service" segment campaign reaches nobody who said no -------------------------


class Setup:
    """One channel's world: a person who said no, an account, what the providers received."""

    def __init__(self, channel, org, wechat_stub):
        self.channel, self.org, self.stub = channel, org, wechat_stub
        self.sms_account = ProviderAccountFactory(org=org, sign_name="千面")
        self.wechat = None
        extra = {}
        if channel == "sms":
            self.person = ContactFactory(org=org)
            add_phone(self.person, "13912345678")
            consent_grant(contact=self.person, purpose="sms_marketing", source="test")
            sms_reply_record(
                org=org, provider="console", phone="13912345678", text="R", sign_name="千面"
            )
            self.address = "13912345678"
        else:
            self.wechat = mini_program(org) if channel == "mp_subscribe" else official_account(org)
            self.address = "o-said-no-0001"
            # Follows the account, never consented to WeChat marketing.
            self.person = wechat_follower(org, self.wechat, self.address)
            openid_hash = pii.lookup_hash("openid", self.address)
            if channel == "wechat_customer":
                # Inside the 48-hour window: a service message would be allowed.
                WeChatServiceWindow.unscoped.create(
                    org=org,
                    account=self.wechat,
                    openid_hash=openid_hash,
                    last_inbound_at=timezone.now(),
                    opened_by="message",
                )
            if channel == "mp_subscribe":
                # One subscribe consent: a service message would be allowed.
                MpSubscribeConsent.unscoped.create(
                    org=org, account=self.wechat, contact=self.person, template_id="TPL-S"
                )
                extra["provider_template_id"] = "TPL-S"
        self.template_kwargs = {"channel": channel, "param_names": [], **extra}

    def template(self, **kwargs):
        return TemplateFactory(
            org=self.org, body="您的直播间今晚开播", **{**self.template_kwargs, **kwargs}
        )

    def campaign_fields(self):
        if self.channel == "sms":
            return {"provider_account": self.sms_account}
        return {"wechat_account": self.wechat}

    def reached(self) -> bool:
        if self.channel == "sms":
            phone_hash = pii.lookup_hash("phone", self.address)
            return ConsoleSms.objects.for_org(self.org).filter(phone_hash=phone_hash).exists()
        sent = [r for r in self.stub.requests if r.path.startswith("cgi-bin/message/")]
        return any(self.address in json.dumps(r.json()) for r in sent) or (
            self.address in self.stub.mass_reached()
        )


@pytest.fixture(params=CHANNELS)
def world(request, acme, wechat_stub, daytime):
    return Setup(request.param, acme, wechat_stub)


def test_the_builder_refuses_a_service_or_staff_template_for_a_segment_send(world, sales_bob):
    client = sales_bob.client()
    service = world.template(message_class="service")
    staff = world.template(message_class="service", audience="staff")
    account = world.campaign_fields()
    body = {
        "name": "x",
        "channel": world.channel,
        **({"provider_account": account["provider_account"].pk} if "provider_account" in account
           else {"wechat_account": account["wechat_account"].pk}),
    }  # fmt: skip
    for template in (service, staff):
        answer = client.post(
            "/api/v1/campaigns", {**body, "variants": [{"template": template.pk}]}, format="json"
        )
        assert answer.status_code == 400, answer.json()
        fields = answer.json()["fields"]
        if world.channel == "wechat_template":
            # Template messages are service-only and a segment send is marketing.
            assert answer.json()["code"] == "marketing_not_allowed"
            assert "channel" in fields
        else:
            assert answer.json()["code"] == "wrong_template"
            assert fields["variants"]["0"]["template"]


@pytest.mark.parametrize("audience", ["customer", "staff"])
def test_a_service_labelled_campaign_forced_past_the_builder_reaches_nobody_who_said_no(
    world, acme, audience, django_capture_on_commit_callbacks
):
    template = world.template(message_class="service", audience=audience)
    campaign = Campaign.objects.for_org(acme).create(
        org=acme, name="forced", channel=world.channel, message_class="service",
        **world.campaign_fields(),
    )  # fmt: skip
    Variant.objects.create(campaign=campaign, name="A", template=template)
    _launch_and_send(campaign, django_capture_on_commit_callbacks)
    assert not world.reached()
    row = Delivery.objects.for_org(acme).get(campaign=campaign, contact=world.person)
    assert row.message_class == "marketing"
    assert row.status == "suppressed"
    expected = {
        "sms": "opted_out",
        "wechat_template": "no_consent",  # planning: no consent; send would say channel_rule
        "wechat_customer": "no_consent",
        "wechat_mass": "no_consent",
        "mp_subscribe": "no_consent",
    }[world.channel]
    assert row.reason == expected


@pytest.mark.parametrize("audience", ["customer", "staff"])
def test_a_service_labelled_row_already_planned_is_refused_at_send(world, acme, audience):
    """A row whose own class says service (written before the class was derived, or edited)
    goes through the one policy check as what it is: a campaign row, i.e. marketing."""
    template = world.template(message_class="service", audience=audience)
    campaign = Campaign.objects.for_org(acme).create(
        org=acme, name="old", channel=world.channel, message_class="service",
        **world.campaign_fields(),
    )  # fmt: skip
    kind = "phone" if world.channel == "sms" else "openid"
    Delivery.objects.for_org(acme).create(
        org=acme,
        campaign=campaign,
        contact=world.person,
        channel=world.channel,
        message_class="service",
        template=template,
        account=world.sms_account if world.channel == "sms" else None,
        wechat_account=world.wechat,
        to_encrypted=pii.encrypt(world.address),
        to_hash=pii.lookup_hash(kind, world.address),
        due_at=timezone.now(),
    )
    deliveries_send_due()
    assert not world.reached()
    row = Delivery.objects.for_org(acme).get(campaign=campaign)
    assert row.status == "suppressed"
    if audience == "staff":
        assert row.reason == "staff_only"
    elif world.channel == "wechat_template":
        assert row.reason == "channel_rule"  # marketing in a template message
    else:
        assert row.reason in ("opted_out", "no_consent")


# -- journeys ---------------------------------------------------------------------------------


@pytest.fixture
def demo(acme, daytime):
    seed_org(acme)
    return acme


def _journey_body(template_key, trigger="grade.changed"):
    return {
        "name": "升级关怀",
        "trigger_event": trigger,
        "steps": [{"type": "send", "template": template_key}],
    }


@pytest.mark.parametrize("trigger", ["grade.changed", "follow", "room.join", "share"])
def test_the_journey_editor_refuses_a_service_template_outside_the_persons_transaction(
    demo, sales_bob, trigger
):
    client = sales_bob.client()
    answer = client.post("/api/v1/journeys", _journey_body("coupon_expiry", trigger), format="json")
    assert answer.status_code == 400
    assert "营销" in answer.json()["fields"]["steps[0].template"][0]
    # The same template fits the person's own claim.
    ok = client.post(
        "/api/v1/journeys", _journey_body("coupon_expiry", "coupon.claim"), format="json"
    )
    assert ok.status_code == 201, ok.json()
    # Moving that journey to a segment-like trigger re-checks its steps.
    moved = client.patch(
        f"/api/v1/journeys/{ok.json()['id']}", {"trigger_event": trigger}, format="json"
    )
    assert moved.status_code == 400


@pytest.mark.parametrize("trigger", ["grade.changed", "coupon.claim", "room.reserve"])
def test_the_journey_editor_refuses_a_staff_template_in_a_send_step(demo, sales_bob, trigger):
    answer = sales_bob.client().post(
        "/api/v1/journeys", _journey_body("owner_hot_lead_sms", trigger), format="json"
    )
    assert answer.status_code == 400
    assert "员工通知" in answer.json()["fields"]["steps[0].template"][0]


@pytest.mark.parametrize(
    ("template_key", "reason"),
    [("coupon_expiry", "opted_out"), ("owner_hot_lead_sms", "staff_only")],
)
def test_a_journey_forced_past_the_editor_reaches_nobody_who_said_no(
    demo, acme, template_key, reason
):
    """A grade-change journey saved straight into the table with a service (or staff)
    template: its send is marketing (or staff-only) at the one policy check."""
    account = ProviderAccountFactory(org=acme, sign_name="千面", is_default=False)
    del account
    person = ContactFactory(org=acme, grade="B")
    add_phone(person, "13700000001")
    consent_grant(contact=person, purpose="sms_marketing", source="test")
    sms_reply_record(org=acme, provider="console", phone="13700000001", text="R", sign_name="千面")
    journey = Journey.objects.for_org(acme).create(
        org=acme, key="forced", name="forced", trigger_event="grade.changed",
        steps=[{"type": "send", "template": template_key}], is_active=True,
    )  # fmt: skip
    journeys.journey_enter(journey=journey, contact=person, key="k", context={})
    deliveries_send_due()
    row = Delivery.objects.for_org(acme).get(key__startswith="journey:")
    assert row.message_class == "marketing"
    assert (row.status, row.reason) == ("suppressed", reason)
    assert not ConsoleSms.objects.for_org(acme).exists()


# -- transactional sends and templates ----------------------------------------------------------


def test_a_staff_template_cannot_be_sent_as_a_customer_service_sms(demo, acme):
    with pytest.raises(DomainError) as raised:
        service_sms_send(
            org=acme, phone="13800138000", template_key="owner_hot_lead_sms", params={}
        )
    assert raised.value.code == "staff_template"


def test_a_staff_template_must_be_a_service_template(sales_bob):
    answer = sales_bob.client().post(
        "/api/v1/templates",
        {
            "name": "员工群发",
            "channel": "sms",
            "message_class": "marketing",
            "audience": "staff",
            "body": "今晚全员加班",
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "staff_template_marketing"


def test_shipped_staff_notices_are_marked_staff(demo, acme):
    keys = dict(MessageTemplate.objects.for_org(acme).values_list("key", "audience"))
    assert keys["owner_hot_lead_sms"] == keys["owner_hot_lead_wechat"] == "staff"
    assert keys["reservation_reminder"] == keys["promo_price"] == "customer"
