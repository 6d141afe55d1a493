"""Variants that optimise themselves (issue 22): a campaign in 自动优化 mode chooses each
treatment row's copy at send time by Thompson sampling on its goal, records every
allocation, and never touches the holdout drawn at planning.

The simulation is deterministic: the bandit's generator is seeded by (campaign, allocation
number) and the simulated people click with a seeded generator, copy B four times as often
as copy A."""

import random

import pytest

from campaigns.models import Arm, BanditAllocation, ConsoleSms, Delivery, ShortLink
from campaigns.services.bandit import thompson_shares
from campaigns.services.campaigns import campaign_create, campaign_launch, campaign_stats
from campaigns.services.sending import deliveries_send_due
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, sms_audience

pytestmark = pytest.mark.django_db

TRUE_CLICK_RATE = {"A": 0.06, "B": 0.30}
BATCH = 100


def _audience(org, n):
    return sms_audience(org, n, prefix="139")


def _bandit_campaign(org, *, holdout_pct=20):
    ProviderAccountFactory(org=org, sign_name="千面")
    return campaign_create(
        org=org,
        name="自动优化上新",
        channel="sms",
        variants=[
            {"name": "A", "template": TemplateFactory(org=org, body="今晚8点开播 {link}")},
            {"name": "B", "template": TemplateFactory(org=org, body="今晚8点新品首发 {link}")},
        ],
        holdout_pct=holdout_pct,
        link_url="https://shop.example.com/spring",
        variant_mode="bandit",
        bandit_goal="click",
    )


def _run_in_batches(campaign, anon, rng):
    """Send the campaign ``BATCH`` rows at a time; after each batch the people reached click
    their link (through the short link, as a phone does) at their copy's true rate.
    Returns the copy each batch's rows got, batch by batch."""
    rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    names = {v.pk: v.name for v in campaign.variants.all()}
    batches = []
    while pending := list(
        rows.filter(status="pending").order_by("id").values_list("pk", flat=True)[:BATCH]
    ):
        deliveries_send_due(ids=pending)
        sent = rows.filter(pk__in=pending, status__in=("sent", "delivered")).order_by("id")
        batches.append([names[v] for v in sent.values_list("variant_id", flat=True)])
        for delivery in sent:
            if rng.random() < TRUE_CLICK_RATE[names[delivery.variant_id]]:
                code = ShortLink.unscoped.get(delivery=delivery).code
                assert anon.get(f"/t/{code}").status_code == 302
    return batches


def test_the_bandit_moves_traffic_to_the_better_copy_and_never_touches_the_holdout(
    acme, daytime, anon
):
    _audience(acme, 1200)
    campaign = _bandit_campaign(acme)
    campaign_launch(campaign=campaign)  # planned; the send task is not run yet
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    holdout_before = sorted(
        rows.filter(arm=Arm.HOLDOUT).values_list("pk", "contact_id", "status", "variant_id")
    )
    assert 150 < len(holdout_before) < 330  # ≈ 20 % of 1,200
    # Planning left the treatment rows' copy to the sender, and gave the holdout none.
    assert not rows.filter(arm=Arm.TREATMENT, variant__isnull=False).exists()
    assert {h[3] for h in holdout_before} == {None}

    batches = _run_in_batches(campaign, anon, random.Random(22))

    # Every batch was allocated once, with what each copy had achieved before it.
    allocations = list(BanditAllocation.objects.for_org(acme).filter(campaign=campaign))
    assert len(allocations) == len(batches) >= 8
    first, last = allocations[0].arms, allocations[-1].arms
    assert [a["name"] for a in first] == ["A", "B"]
    assert [(a["successes"], a["trials"]) for a in first] == [(0, 0), (0, 0)]
    assert 0.4 < first[0]["share"] < 0.6  # no evidence yet: an even split
    assert last[1]["share"] > 0.9 and last[1]["trials"] > last[0]["trials"]
    for allocation, names in zip(allocations, batches, strict=True):
        assert sum(a["assigned"] for a in allocation.arms) == allocation.batch_size == len(names)
        assert [a["assigned"] for a in allocation.arms] == [names.count("A"), names.count("B")]
    # The majority of traffic went to B, and almost all of it once the evidence was in.
    sent_b = sum(names.count("B") for names in batches)
    sent_a = sum(names.count("A") for names in batches)
    assert sent_b > 2 * sent_a
    late = [n for names in batches[len(batches) // 2 :] for n in names]
    assert late.count("B") / len(late) > 0.85

    # The holdout: the same rows, people and state; no copy, nothing sent, no link made.
    holdout_after = sorted(
        rows.filter(arm=Arm.HOLDOUT).values_list("pk", "contact_id", "status", "variant_id")
    )
    assert holdout_after == holdout_before
    holdout_ids = [h[0] for h in holdout_before]
    assert not rows.filter(pk__in=holdout_ids, sent_at__isnull=False).exists()
    assert not ShortLink.unscoped.filter(delivery_id__in=holdout_ids).exists()
    assert not ConsoleSms.unscoped.filter(delivery_id__in=holdout_ids).exists()
    # So the uplift over the holdout is still measured on everyone randomised at planning.
    stats = campaign_stats(campaign=campaign)
    assert stats["uplift"]["holdout_n"] == len(holdout_before)
    assert stats["uplift"]["treatment_n"] + len(holdout_before) == 1200
    a, b = stats["variants"]
    assert (a["sent"], b["sent"]) == (sent_a, sent_b)
    assert b["goal_successes"] == b["clicked"] and b["share"] == last[1]["share"]


def test_the_allocation_history_api_shows_every_snapshot(acme, daytime, anon, sales_bob):
    _audience(acme, 300)
    campaign = _bandit_campaign(acme, holdout_pct=10)
    campaign_launch(campaign=campaign)
    batches = _run_in_batches(campaign, anon, random.Random(5))
    body = sales_bob.client().get(f"/api/v1/campaigns/{campaign.pk}/allocations").json()
    assert (body["variant_mode"], body["bandit_goal"]) == ("bandit", "click")
    assert len(body["allocations"]) == len(batches)
    for snapshot, names in zip(body["allocations"], batches, strict=True):
        assert [a["name"] for a in snapshot["arms"]] == ["A", "B"]
        assert [a["assigned"] for a in snapshot["arms"]] == [names.count("A"), names.count("B")]
        assert sum(a["share"] for a in snapshot["arms"]) == pytest.approx(1, abs=0.002)
        assert snapshot["at"]
    # The trials a snapshot saw are the rows reached before it.
    reached = 0
    for snapshot, names in zip(body["allocations"], batches, strict=True):
        assert sum(a["trials"] for a in snapshot["arms"]) == reached
        reached += len(names)


def test_a_fixed_campaign_keeps_its_planned_split_and_records_no_allocation(acme, daytime):
    _audience(acme, 50)
    ProviderAccountFactory(org=acme, sign_name="千面")
    campaign = campaign_create(
        org=acme,
        name="固定比例",
        channel="sms",
        variants=[
            {"name": "A", "template": TemplateFactory(org=acme)},
            {"name": "B", "template": TemplateFactory(org=acme)},
        ],
    )
    campaign_launch(campaign=campaign)
    planned = dict(
        Delivery.objects.for_org(acme).filter(campaign=campaign).values_list("pk", "variant_id")
    )
    deliveries_send_due()
    after = dict(
        Delivery.objects.for_org(acme).filter(campaign=campaign).values_list("pk", "variant_id")
    )
    assert after == planned and None not in planned.values()
    assert not BanditAllocation.objects.for_org(acme).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"variants": "one"}, "variant_mode"),
        ({"bandit_goal": ""}, "bandit_goal"),
        ({"link_url": None}, "bandit_goal"),  # clicks are counted on the tracked link
    ],
)
def test_the_builder_api_refuses_a_bandit_it_cannot_run(acme, sales_bob, change, field):
    a, b = (TemplateFactory(org=acme, body="今晚8点开播") for _ in "ab")
    body = {
        "name": "自动优化",
        "channel": "sms",
        "variants": [{"name": "A", "template": a.pk}, {"name": "B", "template": b.pk}],
        "variant_mode": "bandit",
        "bandit_goal": "click",
        "link_url": "https://shop.example.com/spring",
        **change,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if body["variants"] == "one":
        body["variants"] = [{"name": "A", "template": a.pk}]
    response = sales_bob.client().post("/api/v1/campaigns", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_thompson_shares_favour_the_arm_with_the_better_record():
    rng = random.Random(1)
    assert thompson_shares([(0, 0), (0, 0)], rng=rng)[0] == pytest.approx(0.5, abs=0.05)
    a, b = thompson_shares([(3, 60), (18, 60)], rng=rng)
    assert b > 0.99 and a + b == pytest.approx(1)
    # A copy nobody has seen yet still gets explored against a mediocre record.
    shares = thompson_shares([(5, 100), (0, 0)], rng=rng)
    assert 0.05 < shares[1] < 0.95


def test_each_goal_counts_what_the_results_count(acme, daytime):
    """Claims and redemptions are credited by the results' last-touch rule; replies are the
    person's non-opt-out SMS answers after the send; trials are the copies' reached rows."""
    from campaigns.selectors import goal_counts_by_variant
    from campaigns.services.receipts import sms_reply_record
    from crm.services.events import event_record

    people = _audience(acme, 200)
    campaign = _bandit_campaign(acme, holdout_pct=0)
    campaign_launch(campaign=campaign)
    deliveries_send_due()
    rows = list(
        Delivery.objects.for_org(acme)
        .filter(campaign=campaign, status__in=("sent", "delivered"))
        .order_by("id")
    )
    assert len(rows) == 200
    a, b = (v.pk for v in campaign.variants.all())
    by_variant = {
        a: [r for r in rows if r.variant_id == a],
        b: [r for r in rows if r.variant_id == b],
    }
    contacts = {p.pk: p for p in people}
    phones = {p.pk: f"139{i:08d}" for i, p in enumerate(people)}
    # Two claims after copy A, one redemption after copy B, one reply and one opt-out to B.
    for row in by_variant[a][:2]:
        event_record(contact=contacts[row.contact_id], type="coupon.claim")
    event_record(contact=contacts[by_variant[b][0].contact_id], type="coupon.redeem")
    for row, text in zip(by_variant[b][:2], ["几点开播？", "TD"], strict=True):
        sms_reply_record(
            org=acme, provider="console", phone=phones[row.contact_id], text=text, sign_name="千面"
        )
    n_a, n_b = len(by_variant[a]), len(by_variant[b])
    assert goal_counts_by_variant(campaign=campaign, goal="claim") == {a: (2, n_a), b: (0, n_b)}
    assert goal_counts_by_variant(campaign=campaign, goal="redemption") == {
        a: (0, n_a),
        b: (1, n_b),
    }
    assert goal_counts_by_variant(campaign=campaign, goal="reply") == {a: (0, n_a), b: (1, n_b)}
    assert goal_counts_by_variant(campaign=campaign, goal="click") == {a: (0, n_a), b: (0, n_b)}
