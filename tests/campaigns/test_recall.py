"""Personal recall from a room: each person's own product, clip and coupon expiry."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import ConsoleSms, Delivery, SmsOptOut
from campaigns.services.campaigns import UnfilledPlaceholder, campaign_create, campaign_launch
from campaigns.services.placeholders import PlaceholderError, template_placeholders_check
from campaigns.services.recall import CLAIM, CLICK, WATCH, engagement_by_contact
from campaigns.services.sending import deliveries_send_due
from core import pii
from crm.models import Event
from crm.services.consent import consent_grant, consent_withdraw
from livecommerce.models import CouponClaim, ProductClip
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone
from tests.factories import ContactFactory, ProductFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory

pytestmark = pytest.mark.django_db

RECALL_BODY = "{nickname}，你看中的{product}讲解回放：{clip_url}"
FALLBACK_BODY = "{nickname}，昨晚的直播回放已上线"


class Broadcast:
    """An ended room: 玫瑰精华 explained 0–10 min, 山茶面霜 10–20 min."""

    def __init__(self, org, streamer):
        self.org = org
        now = timezone.now()
        self.t0 = now - timedelta(hours=3)
        self.room = RoomFactory(
            org=org, streamer=streamer, status="ended", started_at=self.t0, ended_at=now
        )
        self.rose = ProductFactory(org=org, name="玫瑰精华")
        self.camellia = ProductFactory(org=org, name="山茶面霜")
        self.rose_clip = self._clip(self.rose, 0, 10)
        self.camellia_clip = self._clip(self.camellia, 10, 20)
        self.coupon = CouponFactory(org=org, room=self.room)
        self._slot = 0

    def _clip(self, product, start_min, end_min):
        return ProductClip.unscoped.create(
            org=self.org,
            room=self.room,
            product=product,
            pinned_at=self.t0 + timedelta(minutes=start_min),
            unpinned_at=self.t0 + timedelta(minutes=end_min),
            start_s=start_min * 60,
            end_s=end_min * 60,
        )

    def viewer(self, nickname, phone):
        contact = ContactFactory(org=self.org, nickname=nickname)
        add_phone(contact, phone)
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        return contact

    def claim(self, contact, clip, *, redeemed=False):
        self._slot += 1
        return CouponClaim.unscoped.create(
            org=self.org,
            coupon=self.coupon,
            contact=contact,
            slot=self._slot,
            code=f"{self.coupon.pk}-{self._slot}-0000",
            claimed_at=clip.pinned_at + timedelta(minutes=1),
            clip=clip,
            redeemed_at=timezone.now() if redeemed else None,
        )

    def click(self, contact, product, clip):
        Event.unscoped.create(
            org=self.org,
            contact=contact,
            type="product.click",
            room_id=self.room.pk,
            occurred_at=clip.pinned_at + timedelta(minutes=2),
            props={"product": product.pk, "name": product.name, "clip": clip.pk},
        )

    def watch(self, contact, from_min, to_min):
        Event.unscoped.create(
            org=self.org,
            contact=contact,
            type="room.leave",
            room_id=self.room.pk,
            occurred_at=self.t0 + timedelta(minutes=to_min),
            value=(to_min - from_min) * 60,
        )


@pytest.fixture
def show(acme, host_alice):
    ProviderAccountFactory(org=acme)
    return Broadcast(acme, host_alice.profile)


def _recall(org, room, body=RECALL_BODY, fallback_body=FALLBACK_BODY):
    template = TemplateFactory(org=org, name="召回", body=body)
    fallback = TemplateFactory(org=org, name="兜底", body=fallback_body)
    return campaign_create(
        org=org,
        name="直播召回",
        channel="sms",
        source_room=room,
        variants=[{"template": template, "fallback_template": fallback}],
    )


def _send(campaign):
    campaign_launch(campaign=campaign)
    deliveries_send_due(campaign_id=campaign.pk)
    return {
        row.contact_id: row
        for row in Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    }


def _path(text):
    return urlsplit(re.search(r"https?://\S+", text).group()).path


def test_each_viewer_gets_their_own_product_and_clip_link(
    acme, show, sales_bob, admin_carol, daytime
):
    ann = show.viewer("Ann", "13700000001")
    ben = show.viewer("Ben", "13700000002")
    show.claim(ann, show.rose_clip)  # a claim while 玫瑰精华 was explained
    show.click(ben, show.camellia, show.camellia_clip)
    show.watch(ben, 0, 9)  # watched 玫瑰精华 too, but a click beats watching
    rows = _send(_recall(acme, show.room))

    for person, product, clip in (
        (ann, show.rose, show.rose_clip),
        (ben, show.camellia, show.camellia_clip),
    ):
        row = rows[person.pk]
        assert row.status == "sent"
        sms = ConsoleSms.objects.for_org(acme).get(delivery=row).text
        # The text the person read is kept per delivery (the provider adds the signature).
        assert row.rendered.startswith(f"{person.nickname}，你看中的{product.name}讲解回放：")
        assert sms == f"【千面】{row.rendered}"
        path = _path(sms)
        assert path == f"/live/{show.room.pk}/clips/{clip.pk}/"
        page = Client().get(path)
        assert page.status_code == 200
        assert page.context["clip"] == clip and page.context["clip"].product == product

    # The deliveries lists show what each person was sent.
    campaign_id = rows[ann.pk].campaign_id
    listed = sales_bob.client().get(f"/api/v1/campaigns/{campaign_id}/deliveries").json()
    assert {r["contact"]: r["rendered"] for r in listed["results"]} == {
        ann.pk: rows[ann.pk].rendered,
        ben.pk: rows[ben.pk].rendered,
    }
    lead = sales_bob.client().get(f"/api/v1/leads/{ben.pk}/deliveries").json()["results"]
    assert "山茶面霜" in lead[0]["rendered"]
    # …and on the lead's timeline.
    detail = admin_carol.client().get(f"/api/v1/leads/{ben.pk}").json()
    sent = [item for item in detail["timeline"] if item["type"] == "message.sent"]
    assert [item["rendered"] for item in sent] == [rows[ben.pk].rendered]
    assert sent[0]["campaign"] == "直播召回"


def test_a_claimed_unredeemed_coupon_adds_its_expiry(acme, show, daytime):
    ann = show.viewer("Ann", "13700000001")
    cy = show.viewer("Cy", "13700000003")
    ben = show.viewer("Ben", "13700000002")
    show.claim(ann, show.rose_clip)
    show.claim(cy, show.camellia_clip, redeemed=True)  # used it: nothing to chase
    show.click(ben, show.camellia, show.camellia_clip)
    rows = _send(
        _recall(
            acme,
            show.room,
            body="{product}专享券{coupon_expiry}到期，回放：{clip_url}",
            fallback_body="{product}讲解回放：{clip_url}",
        )
    )
    expiry = f"{timezone.localtime(show.coupon.valid_until):%m-%d %H:%M}"
    assert rows[ann.pk].rendered.startswith(f"玫瑰精华专享券{expiry}到期，回放：http")
    # No unredeemed coupon: the fallback copy, still with their own product and clip.
    assert rows[cy.pk].rendered.startswith("山茶面霜讲解回放：http")
    assert rows[ben.pk].rendered.startswith("山茶面霜讲解回放：http")
    assert "到期" not in rows[cy.pk].rendered + rows[ben.pk].rendered
    assert rows[cy.pk].template_id == rows[cy.pk].variant.fallback_template_id


def test_no_engagement_gets_the_fallback_and_opted_out_gets_nothing(acme, show, daytime):
    ann = show.viewer("Ann", "13700000001")
    dan = show.viewer("Dan", "13700000004")  # never engaged
    eve = show.viewer("Eve", "13700000005")  # engaged, then refused marketing SMS
    fay = show.viewer("Fay", "13700000006")  # engaged, refused profiling
    show.claim(ann, show.rose_clip)
    show.click(eve, show.rose, show.rose_clip)
    show.click(fay, show.rose, show.rose_clip)
    consent_withdraw(contact=fay, purpose="profiling", source="privacy_center")
    SmsOptOut.unscoped.create(
        org=acme, phone_hash=pii.lookup_hash("phone", "13700000005"), sign_name="千面"
    )
    rows = _send(_recall(acme, show.room))
    assert "玫瑰精华" in rows[ann.pk].rendered
    for person in (dan, fay):
        assert rows[person.pk].status == "sent"
        assert rows[person.pk].rendered.startswith(f"{person.nickname}，昨晚的直播回放已上线")
    assert (rows[eve.pk].status, rows[eve.pk].reason) == ("suppressed", "opted_out")
    assert rows[eve.pk].rendered == ""
    assert not ConsoleSms.objects.for_org(acme).filter(delivery=rows[eve.pk]).exists()


def test_without_a_fallback_an_unfillable_recipient_is_suppressed(acme, show, daytime):
    dan = show.viewer("Dan", "13700000004")
    template = TemplateFactory(org=acme, body=RECALL_BODY)
    campaign = campaign_create(
        org=acme,
        name="召回",
        channel="sms",
        source_room=show.room,
        variants=[{"template": template}],
    )
    row = _send(campaign)[dan.pk]
    assert (row.status, row.reason) == ("suppressed", "missing_param")


def test_watching_while_explained_ranks_by_overlap(acme, show):
    gus = show.viewer("Gus", "13700000007")
    hal = show.viewer("Hal", "13700000008")
    show.watch(gus, 8, 30)  # 2 min of 玫瑰精华, 10 min of 山茶面霜
    show.watch(hal, 60, 70)  # after every explanation
    found = engagement_by_contact(room=show.room, contact_ids=[gus.pk, hal.pk])
    assert found[gus.pk].kind == WATCH and found[gus.pk].clip_id == show.camellia_clip.pk
    assert hal.pk not in found


def test_engagement_lookup_is_set_based(acme, show):
    people = [show.viewer(f"v{i}", f"1380000{i:04d}") for i in range(30)]
    for i, person in enumerate(people):
        if i % 3 == 0:
            show.claim(person, show.rose_clip)
        elif i % 3 == 1:
            show.click(person, show.camellia, show.camellia_clip)
        else:
            show.watch(person, 0, 15)
    ids = [p.pk for p in people]
    with CaptureQueriesContext(connection) as few:
        small = engagement_by_contact(room=show.room, contact_ids=ids[:3])
    with CaptureQueriesContext(connection) as many:
        found = engagement_by_contact(room=show.room, contact_ids=ids)
    assert len(many) == len(few) <= 5
    assert len(small) == 3 and len(found) == 30
    assert {found[p.pk].kind for p in people} == {CLAIM, CLICK, WATCH}


def test_recall_placeholders_are_known_and_need_a_source_room(acme):
    template_placeholders_check(body=RECALL_BODY, audience="customer", param_names=[])
    with pytest.raises(PlaceholderError):
        template_placeholders_check(body="{product_url}", audience="customer", param_names=[])
    template = TemplateFactory(org=acme, body=RECALL_BODY)
    with pytest.raises(UnfilledPlaceholder) as refused:
        campaign_create(org=acme, name="x", channel="sms", variants=[{"template": template}])
    assert "source_room" in refused.value.fields


def test_the_api_creates_a_recall_campaign(acme, show, sales_bob):
    template = TemplateFactory(org=acme, body=RECALL_BODY)
    fallback = TemplateFactory(org=acme, body=FALLBACK_BODY)
    response = sales_bob.client().post(
        "/api/v1/campaigns",
        {
            "name": "召回",
            "channel": "sms",
            "source_room": show.room.pk,
            "variants": [{"template": template.pk, "fallback_template": fallback.pk}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["source_room"] == show.room.pk
    assert body["variants"][0]["fallback_template"] == fallback.pk


def test_a_journey_send_step_recalls_from_the_room_that_brought_the_member_in(
    acme, show, daytime, django_capture_on_commit_callbacks
):
    from campaigns.models import Journey
    from campaigns.services import journeys
    from campaigns.services.journey_edit import validate_steps

    TemplateFactory(org=acme, key="recall", body=RECALL_BODY)
    TemplateFactory(org=acme, key="recall_fallback", body=FALLBACK_BODY)
    steps = validate_steps(
        org_id=acme.pk,
        trigger="room.leave",
        steps=[{"type": "send", "template": "recall", "fallback_template": "recall_fallback"}],
    )
    journey = Journey.objects.for_org(acme).create(
        org=acme, key="recall", name="离场召回", trigger_event="room.leave", steps=steps
    )
    ann = show.viewer("Ann", "13700000001")
    dan = show.viewer("Dan", "13700000004")
    show.click(ann, show.camellia, show.camellia_clip)
    with django_capture_on_commit_callbacks(execute=True):
        for person in (ann, dan):
            journeys.journey_enter(
                journey=journey,
                contact=person,
                key=f"{person.pk}:room:{show.room.pk}",
                context={"room_id": show.room.pk},
            )
    deliveries_send_due()
    rows = {
        r.contact_id: r for r in Delivery.objects.for_org(acme).filter(key__startswith="journey:")
    }
    assert rows[ann.pk].rendered.startswith("Ann，你看中的山茶面霜讲解回放：http")
    assert f"/clips/{show.camellia_clip.pk}/" in rows[ann.pk].rendered
    assert rows[dan.pk].rendered.startswith("Dan，昨晚的直播回放已上线")
