"""千人千面: conditions choose the copy per person; A/B splits are stable and weighted."""

import pytest

from campaigns.models import ConsoleSms, Delivery
from campaigns.services.campaigns import campaign_create, campaign_launch
from campaigns.services.planning import campaign_plan
from campaigns.services.sending import deliveries_send_due
from campaigns.services.variants import variant_default
from crm.services.consent import consent_grant, consent_withdraw
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(acme):
    ProviderAccountFactory(org=acme)
    contacts = []
    for i in range(200):
        contact = ContactFactory(org=acme, income_level="low" if i % 4 == 0 else "high")
        add_phone(contact, f"1370000{i:04d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        contacts.append(contact)
    return contacts


def _plan(org, variants, holdout=0):
    campaign = campaign_create(
        org=org, name="千人千面", channel="sms", variants=variants, holdout_pct=holdout
    )
    campaign_plan(campaign=campaign)
    return campaign


def test_price_sensitive_people_get_the_promotion_copy(acme, people):
    promo = TemplateFactory(org=acme, name="促销")
    feature = TemplateFactory(org=acme, name="卖点")
    campaign = _plan(
        acme,
        [
            {"template": promo, "condition": {"field": "income_level", "op": "eq", "value": "low"}},
            {"template": feature},
        ],
    )
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign).select_related("contact")
    for row in rows:
        expected = promo if row.contact.income_level == "low" else feature
        assert row.template_id == expected.pk
    assert rows.filter(template=promo).count() == 50


def test_ab_split_is_weighted_and_stable(acme, people):
    a = TemplateFactory(org=acme, name="A")
    b = TemplateFactory(org=acme, name="B")
    variants = [{"template": a, "weight": 3}, {"template": b, "weight": 1}]
    first = _plan(acme, variants)
    rows = Delivery.objects.for_org(acme).filter(campaign=first)
    share_a = rows.filter(template=a).count() / rows.count()
    assert 0.6 < share_a < 0.9
    # Re-planning the same campaign assigns nobody anew (and nobody twice).
    before = dict(rows.values_list("contact_id", "variant_id"))
    assert campaign_plan(campaign=first) == 0
    assert dict(rows.values_list("contact_id", "variant_id")) == before


def test_holdout_is_drawn_among_eligible_people_only(acme, people):
    template = TemplateFactory(org=acme)
    outsider = ContactFactory(org=acme)  # no phone: suppressed, never in the holdout
    campaign = _plan(acme, [{"template": template}], holdout=20)
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    assert rows.get(contact=outsider).reason == "no_address"
    holdout = rows.filter(status="holdout").count()
    assert 20 <= holdout <= 60  # ~20 % of 200


# -- profiling refused: the default copy, at planning and at send time ------------------------

LOW = {"field": "income_level", "op": "eq", "value": "low"}


def test_people_who_refused_profiling_get_the_default_copy_and_the_same_ab_split(acme, people):
    promo = TemplateFactory(org=acme, name="促销")
    a = TemplateFactory(org=acme, name="A")
    b = TemplateFactory(org=acme, name="B")
    refusers = set()
    for contact in people[::3]:
        consent_withdraw(contact=contact, purpose="profiling", source="privacy_center")
        refusers.add(contact.pk)
    campaign = _plan(
        acme,
        [{"template": promo, "condition": LOW}, {"template": a, "weight": 2}, {"template": b}],
    )
    variants = list(campaign.variants.all())
    rows = list(Delivery.objects.for_org(acme).filter(campaign=campaign).select_related("contact"))
    assert len(rows) == 200
    for row in rows:
        personalised = row.contact.income_level == "low" and row.contact_id not in refusers
        default = variant_default(
            campaign_id=campaign.pk, contact_id=row.contact_id, variants=variants
        )
        # Planning SQL and the send-time Python rule agree on everyone's default copy.
        assert row.variant_id == (variants[0].pk if personalised else default.pk)
    low_refusers = [r for r in rows if r.contact_id in refusers and r.contact.income_level == "low"]
    assert low_refusers and all(r.template_id != promo.pk for r in low_refusers)
    # Both A/B copies still reach refusers: the split is not personalisation.
    assert {r.template_id for r in rows if r.contact_id in refusers} == {a.pk, b.pk}


def test_refusing_profiling_after_planning_sends_the_default_copy(
    acme, people, daytime, django_capture_on_commit_callbacks
):
    promo = TemplateFactory(org=acme, name="促销", body="{nickname}专享低价", param_names=[])
    plain = TemplateFactory(org=acme, name="卖点", body="新品卖点速览", param_names=[])
    campaign = campaign_create(
        org=acme,
        name="千人千面",
        channel="sms",
        variants=[{"template": promo, "condition": LOW}, {"template": plain}],
    )
    campaign_launch(campaign=campaign)  # planned; the sender has not run yet
    person = people[0]  # income_level low: planned with the promotion copy
    row = Delivery.objects.for_org(acme).get(campaign=campaign, contact=person)
    assert row.template_id == promo.pk
    consent_withdraw(contact=person, purpose="profiling", source="privacy_center")
    deliveries_send_due(campaign_id=campaign.pk)
    row.refresh_from_db()
    assert (row.status, row.template_id, row.variant.template_id) == ("sent", plain.pk, plain.pk)
    text = ConsoleSms.objects.for_org(acme).get(delivery=row).text
    assert "新品卖点速览" in text and "低价" not in text
    # Someone who kept profiling still gets the personalised copy.
    kept = Delivery.objects.for_org(acme).get(campaign=campaign, contact=people[4])
    assert kept.template_id == promo.pk and kept.status == "sent"
