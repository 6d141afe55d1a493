"""千人千面: conditions choose the copy per person; A/B splits are stable and weighted."""

import pytest

from campaigns.models import Delivery
from campaigns.services.campaigns import campaign_create
from campaigns.services.planning import plan_campaign
from crm.services.consent import consent_grant
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
    plan_campaign(campaign=campaign)
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
    assert plan_campaign(campaign=first) == 0
    assert dict(rows.values_list("contact_id", "variant_id")) == before


def test_holdout_is_drawn_among_eligible_people_only(acme, people):
    template = TemplateFactory(org=acme)
    outsider = ContactFactory(org=acme)  # no phone: suppressed, never in the holdout
    campaign = _plan(acme, [{"template": template}], holdout=20)
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    assert rows.get(contact=outsider).reason == "no_address"
    holdout = rows.filter(status="holdout").count()
    assert 20 <= holdout <= 60  # ~20 % of 200
