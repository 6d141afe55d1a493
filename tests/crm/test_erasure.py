"""Erasure (PIPL deletion) regressions: each test is a probe of issue #15 that failed before
the personal-data map drove erasure (docs/crm.md, "Personal-data map", says how)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import (
    ConsoleSms,
    Journey,
    JourneyMembership,
    SmsOptOut,
    SmsReply,
    WeChatTagMember,
)
from core import pii
from crm.services.privacy import contact_erase
from livecommerce.models import CouponClaim, InviteCode
from tests.campaigns.factories import add_phone
from tests.factories import ContactFactory
from tests.livecommerce.factories import CouponFactory
from tests.wechat.factories import official_account, wechat_follower
from wechat.models import WeChatServiceWindow

PHONE = "13912340001"
OPENID = "o-erase-me-0001"


def _claim(coupon, contact, nth, slot):
    return CouponClaim.unscoped.create(
        org=coupon.org,
        coupon=coupon,
        contact=contact,
        nth=nth,
        slot=slot,
        code=f"{coupon.pk}-{slot}-1234",
        claimed_at=timezone.now(),
    )


def test_a_contact_with_two_coupon_claims_is_erased(acme, host_alice):
    contact = ContactFactory(org=acme)
    coupon = CouponFactory(org=acme, room__streamer=host_alice.profile, per_viewer_limit=2)
    _claim(coupon, contact, 1, 1)
    _claim(coupon, contact, 2, 2)

    contact_erase(contact=contact)

    codes = list(CouponClaim.unscoped.filter(contact=contact).values_list("code", flat=True))
    assert len(codes) == 2 and len(set(codes)) == 2
    assert not any(code.startswith(f"{coupon.pk}-") for code in codes)


def test_two_followers_of_one_official_account_are_both_erased(acme):
    oa = official_account(acme)
    first = wechat_follower(acme, oa, "o-follower-1")
    second = wechat_follower(acme, oa, "o-follower-2")

    contact_erase(contact=first)
    contact_erase(contact=second)

    hashes = {pii.lookup_hash("openid", "o-follower-1"), pii.lookup_hash("openid", "o-follower-2")}
    assert not oa.followers.filter(openid_hash__in=hashes).exists()
    assert oa.followers.count() == 2  # the follower count stays


def test_two_invite_code_holders_are_both_erased(acme):
    first, second = ContactFactory(org=acme), ContactFactory(org=acme)
    InviteCode.unscoped.create(org=acme, contact=first, code="INVFIRST", device="dev-1")
    InviteCode.unscoped.create(org=acme, contact=second, code="INVSECOND", device="dev-2")

    contact_erase(contact=first)
    contact_erase(contact=second)

    codes = set(InviteCode.unscoped.filter(org=acme).values_list("code", flat=True))
    assert len(codes) == 2 and not codes & {"INVFIRST", "INVSECOND"}


def test_two_memberships_of_one_journey_are_erased(acme):
    journey = Journey.unscoped.create(org=acme, key="j", name="J", trigger_event="reservation")
    contact = ContactFactory(org=acme)
    for key in ("reservation:1", "reservation:2"):
        JourneyMembership.unscoped.create(org=acme, journey=journey, contact=contact, key=key)

    contact_erase(contact=contact)

    keys = set(JourneyMembership.unscoped.filter(contact=contact).values_list("key", flat=True))
    assert len(keys) == 2 and not keys & {"reservation:1", "reservation:2"}


def test_rows_keyed_by_the_persons_hashes_are_reached(acme):
    """SmsReply, ConsoleSms, SmsOptOut, WeChatServiceWindow and WeChatTagMember have no
    foreign key to the contact: erasure finds them through the person's phone/openid hash."""
    oa = official_account(acme)
    contact = wechat_follower(acme, oa, OPENID)
    add_phone(contact, PHONE)
    phone_hash, openid_hash = pii.lookup_hash("phone", PHONE), pii.lookup_hash("openid", OPENID)
    SmsReply.unscoped.create(
        org=acme, provider="console", phone_hash=phone_hash, text="我住在独一无二路"
    )
    SmsOptOut.unscoped.create(
        org=acme, provider="console", phone_hash=phone_hash, sign_name="千面", text="R"
    )
    ConsoleSms.unscoped.create(
        org=acme,
        phone_masked=pii.mask_phone(PHONE),
        phone_hash=phone_hash,
        text="独一无二路的您好",
        message_id="console-erase-1",
    )
    WeChatServiceWindow.unscoped.create(
        org=acme,
        account=oa,
        openid_hash=openid_hash,
        last_inbound_at=timezone.now() - timedelta(hours=1),
        opened_by="message",
    )
    WeChatTagMember.unscoped.create(org=acme, account=oa, tag_id=100, openid_hash=openid_hash)

    contact_erase(contact=contact)

    for model in (SmsReply, SmsOptOut, ConsoleSms):
        assert not model.unscoped.filter(phone_hash=phone_hash).exists(), model
        assert not model.unscoped.filter(text__contains="独一无二").exists(), model
    assert not ConsoleSms.unscoped.filter(phone_masked=pii.mask_phone(PHONE)).exists()
    for model in (WeChatServiceWindow, WeChatTagMember):
        assert not model.unscoped.filter(openid_hash=openid_hash).exists(), model
    # Anonymous counts stay: opt-outs per signature, replies, windows, tag sizes.
    assert SmsOptOut.unscoped.filter(org=acme, sign_name="千面").count() == 1
    assert SmsReply.unscoped.filter(org=acme).count() == 1
    assert WeChatTagMember.unscoped.filter(account=oa, tag_id=100).count() == 1


def erase_one_demo_lead_of_each_kind() -> list:
    """Erase a demo lead with a phone, one with an openid, one with consents, one with an
    order, one of the second organisation, and every claimant and follower the demo has."""
    from core.models import Organization
    from crm.models import Consent, Contact, ContactIdentity, Event
    from wechat.models import WeChatFollower

    demo, demo2 = Organization.objects.get(slug="demo"), Organization.objects.get(slug="demo2")
    picks = [
        ContactIdentity.objects.for_org(demo).filter(kind="phone").first().contact_id,
        ContactIdentity.objects.for_org(demo).filter(kind="openid").last().contact_id,
        Consent.objects.for_org(demo).first().contact_id,
        Event.objects.for_org(demo).filter(type="order").first().contact_id,
        Contact.objects.for_org(demo2).first().pk,
        *CouponClaim.unscoped.values_list("contact_id", flat=True),
        *WeChatFollower.unscoped.exclude(contact=None).values_list("contact_id", flat=True),
    ]
    erased = []
    for pk in dict.fromkeys(picks):
        contact = Contact.unscoped.get(pk=pk)
        contact_erase(contact=contact)
        contact.refresh_from_db()
        erased.append(contact)
    return erased


@pytest.mark.django_db(transaction=True)
def test_seed_demo_starts_again_after_erasures():
    from django.core.management import call_command

    from crm.models import Contact

    call_command("seed_demo")
    erased = erase_one_demo_lead_of_each_kind()
    before = Contact.unscoped.count()

    call_command("seed_demo")  # `make run` seeds on every start

    assert Contact.unscoped.count() == before
    assert all(Contact.unscoped.get(pk=c.pk).erased_at for c in erased)
    assert all(Contact.unscoped.get(pk=c.pk).nickname == "" for c in erased)


# --- A person who touched every feature -------------------------------------------------------

# Stored only encrypted (or hashed) before erasure: the scan cannot see them in clear.
NEVER_IN_CLEAR = {"openid", "unionid", "mp_openid", "dup_phone"}


@pytest.fixture
def person(acme, host_alice, admin_carol, sales_bob):
    from tests.support.personal_data import person_who_touched_everything

    return person_who_touched_everything(acme, host=host_alice, admin=admin_carol, sales=sales_bob)


def test_erasure_leaves_none_of_the_persons_values_in_any_table(person, admin_carol):
    from campaigns.models import Delivery
    from livecommerce.models import CouponClaim as Claim
    from tests.support.personal_data import where_found

    otp_sms = Delivery.unscoped.filter(key__startswith="otp:").get()
    assert otp_sms.contact_id is None  # sent before the phone was bound: found by its hash
    before = where_found(person.secrets)
    hidden = [s for s in person.secrets if s not in before]
    assert hidden == ["13912345670", "o-oa-甲-secret", "u-甲-secret", "o-mp-甲-secret"]

    assert admin_carol.client().post(f"/api/v1/leads/{person.contact.pk}/erase").status_code == 204

    assert where_found(person.secrets) == {}
    otp_sms.refresh_from_db()
    assert (otp_sms.to_hash.startswith("~"), otp_sms.to_encrypted, otp_sms.key) == (True, "", None)
    # Anonymous counts stay.
    assert Claim.unscoped.filter(contact=person.contact).count() == 2
    assert SmsOptOut.unscoped.filter(org=person.contact.org, sign_name="千面").count() == 1
    assert SmsReply.unscoped.filter(org=person.contact.org).count() == 2
    assert WeChatTagMember.unscoped.filter(tag_id=100).count() == 1
    assert JourneyMembership.unscoped.filter(contact=person.contact).count() == 2


def test_erasing_twice_changes_nothing_more(person):
    from tests.support.personal_data import all_values_in_database

    contact_erase(contact=person.contact)
    # Sorted: PostgreSQL returns rows in physical order, which a same-value UPDATE may change.
    first = sorted(v for v in all_values_in_database() if v[0] != "core_auditlog")
    contact_erase(contact=person.contact)
    assert sorted(v for v in all_values_in_database() if v[0] != "core_auditlog") == first


def test_two_people_sharing_every_unique_key_space(
    acme, person, host_alice, admin_carol, sales_bob
):
    """The second person shares the coupon, the official account, the tag, the journey, the
    SMS signature: erasing one leaves every value of the other, then both erase cleanly."""
    from tests.support.personal_data import person_who_touched_everything, where_found

    other = person_who_touched_everything(
        acme, host=host_alice, admin=admin_carol, sales=sales_bob, tag="乙", phone="13987654321"
    )
    others_before = where_found(other.secrets)

    contact_erase(contact=person.contact)
    assert where_found(person.secrets) == {}
    assert where_found(other.secrets) == others_before

    contact_erase(contact=other.contact)
    assert where_found(other.secrets) == {}


def test_the_access_export_holds_the_persons_data_in_clear(person, admin_carol, sales_bob):
    from core.errors import Forbidden
    from core.models import AuditLog
    from crm.services.privacy import contact_export

    with pytest.raises(Forbidden):
        contact_export(contact=person.contact, membership=sales_bob.membership)
    url = f"/api/v1/leads/{person.contact.pk}/personal-data"
    assert sales_bob.client().get(url).status_code == 403
    response = admin_carol.client().get(url)
    assert response.status_code == 200
    body = response.json()
    text = json.dumps(body, ensure_ascii=False)
    # Complete: every value of the person the database holds (ciphertext decrypted) is in it.
    assert [value for value in person.secrets if value not in text] == []
    assert {"crm.Contact", "crm.ContactIdentity", "livecommerce.CouponClaim"} <= set(body["tables"])
    from tests.support.personal_data import STAFF_IP

    assert "core.AuditLog" in body["tables"] and STAFF_IP not in text
    assert AuditLog.objects.for_org(person.contact.org_id).filter(action="contact.export").exists()

    contact_erase(contact=person.contact)
    after = str(contact_export(contact=person.contact))
    assert [s for s in person.secrets if s in after] == []


def test_staff_notices_about_the_person_are_reached(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    """A hot-lead notice goes to the owner (a staff delivery with no contact) and names the
    lead: its params and the console inbox's text are the person's data too."""
    from campaigns.demo import seed_org
    from campaigns.models import Delivery
    from campaigns.services import journeys
    from campaigns.services.owner_notify import staff_contact_set
    from tests.campaigns.factories import ProviderAccountFactory
    from tests.support.personal_data import where_found

    seed_org(acme)
    ProviderAccountFactory(org=acme, is_default=True)
    staff_contact_set(org_id=acme.pk, user=sales_bob.user, phone="13900000001")
    lead = ContactFactory(
        org=acme, owner=sales_bob.user, grade="A", score=92, nickname="独一无二小红"
    )
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
    notice = Delivery.objects.for_org(acme).get(key__startswith="owner:")
    assert notice.contact_id is None
    assert set(where_found(["独一无二小红"])["独一无二小红"]) >= {
        "campaigns_delivery.params",
        "campaigns_consolesms.text",
    }

    contact_erase(contact=lead)

    assert where_found(["独一无二小红"]) == {}
    assert Delivery.objects.for_org(acme).filter(pk=notice.pk).exists()


def test_writes_that_land_after_an_erasure_are_erased_by_the_sweep(acme, host_alice):
    """A claim answered from Redis reaches the database when the reconciler runs, the hub
    records chat in batches, a viewer token works until it expires: the periodic sweep erases
    again what arrived for a recently erased person (no new audit row), and leaves people
    erased longer ago than any such write can come alone."""
    from datetime import timedelta

    from core.models import AuditLog
    from crm.services.privacy import ERASURE_FOLLOW_UP, erasure_sweep
    from livecommerce.models import ChatMessage
    from tests.support.personal_data import where_found

    room_coupon = CouponFactory(org=acme, room__streamer=host_alice.profile, released=True)
    recent, old = ContactFactory(org=acme), ContactFactory(org=acme)
    contact_erase(contact=recent)
    contact_erase(contact=old)
    AuditLog.objects.for_org(acme).filter(action="contact.erase", target_id=str(old.pk)).update(
        created_at=timezone.now() - ERASURE_FOLLOW_UP - timedelta(minutes=1)
    )
    for who, tag in ((recent, "late"), (old, "old")):
        claim = _claim(room_coupon, who, 1, 1 if tag == "late" else 2)
        CouponClaim.unscoped.filter(pk=claim.pk).update(code=f"{tag}-独一无二-code")
        ChatMessage.unscoped.create(
            org=acme, room=room_coupon.room, contact=who, nickname=f"{tag}昵称", text=f"{tag}消息"
        )
    audits = AuditLog.objects.for_org(acme).count()

    assert erasure_sweep() == 1

    assert where_found(["late-独一无二-code", "late昵称", "late消息"]) == {}
    assert set(where_found(["old-独一无二-code", "old昵称", "old消息"])) == {
        "old-独一无二-code",
        "old昵称",
        "old消息",
    }
    assert AuditLog.objects.for_org(acme).count() == audits
