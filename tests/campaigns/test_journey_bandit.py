"""Journey send steps that experiment (issue 22): several copies run as a bandit on a goal,
with a step holdout that is never sent; 智能节奏 steps with a randomised untimed share; the
results endpoint reports allocations and uplifts counted from the raw outbox rows; bad step
settings are refused with the step's field named.

A deterministic simulation: members enter through the real trigger (``follow``), the real
sender sends their messages (the SMS stub), and the test plays the recipients — copy B's
readers click one time in two, copy A's one time in twenty.
"""

from __future__ import annotations

import random
from itertools import accumulate

import pytest
import time_machine
from django.utils import timezone
from statsmodels.stats.proportion import proportion_confint

from campaigns.journey_selectors import rate_wilson
from campaigns.models import Arm, BanditAllocation, Delivery, DeliveryStatus, Journey, Timing
from campaigns.services import bandit
from campaigns.services.send_time import in_untimed_share, journey_step_salt
from crm.models import Event
from crm.services.consent import consent_grant
from crm.services.events import event_record
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone, beijing
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def copies(acme):
    ProviderAccountFactory(org=acme, sign_name="千面")
    TemplateFactory(org=acme, key="copy_a", name="价格文案", body="今晚直降", param_names=[])
    TemplateFactory(org=acme, key="copy_b", name="卖点文案", body="新品首发", param_names=[])


def _journey(client, step: dict) -> dict:
    response = client.post(
        "/api/v1/journeys",
        {"name": "关注后推荐", "trigger_event": "follow", "steps": [step]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    journey = response.json()
    assert client.post(f"/api/v1/journeys/{journey['id']}/activate").status_code == 200
    return journey


def _follow(acme, n: int, start: int, capture, habit_hour: int | None = None) -> list:
    people = []
    for i in range(start, start + n):
        contact = ContactFactory(org=acme, nickname=f"粉丝{i}")
        add_phone(contact, f"1360{i:07d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        if habit_hour is not None:
            Event.objects.for_org(acme).create(
                org=acme, contact=contact, type="room.join", occurred_at=beijing(habit_hour, 5, -1)
            )
        people.append(contact)
    with capture(execute=True):
        for contact in people:
            event_record(contact=contact, type="follow")
    return people


def test_a_bandit_step_moves_traffic_to_the_better_copy_and_never_touches_its_holdout(
    acme, sales_bob, copies, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    created = _journey(
        client,
        {
            "type": "send",
            "template": "copy_a",
            "variants": ["copy_b"],
            "variant_mode": "bandit",
            "bandit_goal": "click",
            "holdout_pct": 20,
        },
    )
    journey = Journey.objects.for_org(acme).get(pk=created["id"])
    rows = Delivery.objects.for_org(acme).filter(journey=journey, journey_step=0)
    b_share_per_round = []
    with time_machine.travel(beijing(10), tick=False):
        for round_ in range(12):
            before = set(rows.values_list("pk", flat=True))
            _follow(acme, 25, round_ * 25, django_capture_on_commit_callbacks)
            new = rows.exclude(pk__in=before)
            sent = new.filter(status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED))
            b_share_per_round.append(
                sent.filter(template__key="copy_b").count() / max(1, sent.count())
            )
            # The recipients answer: B's readers click one in two, A's one in twenty.
            for row in sent.select_related("template"):
                every = 2 if row.template.key == "copy_b" else 20
                if row.contact_id % every == 0:
                    Delivery.objects.for_org(acme).filter(pk=row.pk).update(
                        clicked_at=timezone.now()
                    )

    allocations = list(BanditAllocation.objects.for_org(acme).filter(journey=journey, step_index=0))
    assert len(allocations) >= 5
    # The first allocation knew nothing: an even split, give or take the sampling.
    assert 0.4 <= allocations[0].arms[1]["share"] <= 0.6
    assert [a["variant"] for a in allocations[-1].arms] == ["copy_a", "copy_b"]
    assert allocations[-1].arms[1]["share"] > 0.9
    assert sum(b_share_per_round[-3:]) / 3 > 0.8 > b_share_per_round[0]

    # The holdout: exactly the people its own hash picks, never sent, never allocated.
    holdout = rows.filter(arm=Arm.HOLDOUT)
    for row in rows:
        expected = bandit.journey_step_in_holdout(
            journey_id=journey.pk, step_index=0, contact_id=row.contact_id, pct=20
        )
        assert (row.arm == Arm.HOLDOUT) is expected
    assert 0.12 <= holdout.count() / rows.count() <= 0.28
    assert not holdout.exclude(status=DeliveryStatus.HOLDOUT).exists()
    assert not holdout.filter(sent_at__isnull=False).exists()
    reached = rows.filter(status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED)).count()
    assert sum(a["trials"] for a in allocations[-1].arms) <= reached
    assert reached == rows.filter(arm=Arm.TREATMENT).count()

    # The journey page's results: the copies, their shares and the allocation history.
    results = client.get(f"/api/v1/journeys/{journey.pk}/results").json()
    assert len(results) == 1
    step = results[0]
    assert (step["variant_mode"], step["goal"]) == ("bandit", "click")
    by_key = {c["template"]: c for c in step["copies"]}
    for key in ("copy_a", "copy_b"):
        mine = rows.filter(template__key=key, arm=Arm.TREATMENT)
        assert by_key[key]["sent"] == mine.count()
        assert by_key[key]["successes"] == mine.filter(clicked_at__isnull=False).count()
    assert by_key["copy_b"]["share"] == allocations[-1].arms[1]["share"]
    assert [a["id"] for a in step["allocations"]] == [a.pk for a in allocations]
    assert step["holdout"]["holdout_n"] == holdout.count()
    assert step["holdout"]["treatment_n"] == reached
    assert step["timing"] is None

    # What was sent under each allocation, counted from the raw rows: each treated row names
    # the allocation whose shares drew its copy (replaying the draw gives the same copy),
    # the holdout names none.
    assert not holdout.filter(allocation__isnull=False).exists()
    by_pk = {a.pk: a for a in allocations}
    for row in rows.filter(arm=Arm.TREATMENT).select_related("template"):
        allocation = by_pk[row.allocation_id]
        u = random.Random(f"{allocation.seed}:{row.contact_id}").random()  # noqa: S311
        bounds = list(accumulate(a["share"] for a in allocation.arms))
        drawn = next((k for k, b in enumerate(bounds) if u < b), len(bounds) - 1)
        assert allocation.arms[drawn]["variant"] == row.template.key
    for shown in step["allocations"]:
        mine = rows.filter(allocation_id=shown["id"])
        reached_here = mine.filter(status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED))
        assert shown["assigned"] == mine.count()
        assert shown["sent"] == reached_here.count()
        for arm in shown["arms"]:
            assert arm["sent"] == reached_here.filter(template__key=arm["variant"]).count()
            assert arm["assigned"] == mine.filter(template__key=arm["variant"]).count()
    assert sum(a["sent"] for a in step["allocations"]) == reached
    assert step["unallocated_sent"] == 0
    # The holdout apart: its members and their conversion; each copy against it.
    assert step["holdout_conversion"]["n"] == holdout.count()
    for key in ("copy_a", "copy_b"):
        conversion = by_key[key]["conversion"]
        assert conversion["n"] == rows.filter(template__key=key, arm=Arm.TREATMENT).count()
        assert by_key[key]["vs_holdout"]["holdout_n"] == holdout.count()
        assert by_key[key]["vs_holdout"]["treatment_n"] == conversion["n"]


@pytest.mark.parametrize(("x", "n"), [(0, 10), (1, 10), (7, 50), (50, 50), (3, 1000)])
def test_a_rates_interval_is_the_wilson_score_interval(x, n):
    low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
    rate = rate_wilson(x=x, n=n)
    assert rate["rate"] == round(x / n, 4)
    assert rate["ci95"] == pytest.approx([low, high], abs=1e-4)
    assert rate_wilson(x=0, n=0)["ci95"] is None


def test_a_timed_step_sends_its_untimed_share_at_once_and_reports_the_uplift(
    acme, sales_bob, copies, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    created = _journey(
        client,
        {"type": "send", "template": "copy_a", "best_hour": True, "untimed_pct": 30},
    )
    journey = Journey.objects.for_org(acme).get(pk=created["id"])
    with time_machine.travel(beijing(9, 30), tick=False):
        # New followers without history (sent at the step's own time), then followers who
        # watch at 15:00 every day (the timed ones wait for it).
        _follow(acme, 60, 0, django_capture_on_commit_callbacks)
        later = _follow(acme, 60, 60, django_capture_on_commit_callbacks, habit_hour=15)
    rows = Delivery.objects.for_org(acme).filter(journey=journey, journey_step=0)
    salt = journey_step_salt(journey_id=journey.pk, step_index=0)
    for row in rows:
        untimed = in_untimed_share(salt=salt, contact_id=row.contact_id, pct=30)
        assert row.timing == (Timing.UNTIMED if untimed else Timing.TIMED)
    untimed_rows = rows.filter(timing=Timing.UNTIMED)
    assert 0.18 <= untimed_rows.count() / rows.count() <= 0.42
    # The untimed share went out at once; the timed followers with a habit wait for 15:00.
    assert not untimed_rows.exclude(status=DeliveryStatus.SENT).exists()
    second = rows.filter(contact__in=later, timing=Timing.TIMED)
    assert second.exists()
    assert {r.due_at for r in second} == {beijing(15)}

    # Some recipients buy; the uplift is counted from these raw rows.
    with time_machine.travel(beijing(16), tick=False):
        for row in rows:
            if row.contact_id % 3 == 0:
                event_record(contact=row.contact, type="order")
    converted = {r.contact_id for r in rows if r.contact_id % 3 == 0}
    timed = rows.filter(timing=Timing.TIMED)
    step = client.get(f"/api/v1/journeys/{journey.pk}/results").json()[0]
    timing = step["timing"]
    assert timing["method"] == "itt_newcombe_timed_vs_untimed"
    assert timing["treatment_n"] == timed.count()
    assert timing["holdout_n"] == untimed_rows.count()
    assert timing["treatment_converted"] == len([r for r in timed if r.contact_id in converted])
    assert timing["holdout_converted"] == len(
        [r for r in untimed_rows if r.contact_id in converted]
    )
    assert step["holdout"] is None and step["copies"][0]["template"] == "copy_a"


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"variant_mode": "bandit", "variants": ["copy_b"]}, "steps[0].bandit_goal"),
        (
            {"variant_mode": "bandit", "variants": ["copy_b"], "bandit_goal": "likes"},
            "steps[0].bandit_goal",
        ),
        ({"variant_mode": "bandit", "bandit_goal": "click"}, "steps[0].variant_mode"),
        ({"bandit_goal": "click"}, "steps[0].bandit_goal"),
        ({"variants": ["nope"]}, "steps[0].variants[0]"),
        ({"variants": ["copy_a"]}, "steps[0].variants"),
        ({"variants": "copy_b"}, "steps[0].variants"),
        ({"holdout_pct": 80}, "steps[0].holdout_pct"),
        ({"holdout_pct": "10"}, "steps[0].holdout_pct"),
        ({"untimed_pct": 10}, "steps[0].untimed_pct"),
        ({"best_hour": True, "untimed_pct": -1}, "steps[0].untimed_pct"),
        ({"variant_mode": "smart"}, "steps[0].variant_mode"),
        ({"arms": ["copy_b"]}, "steps[0].arms"),
    ],
)
def test_bad_step_experiment_settings_are_refused_naming_the_field(
    acme, sales_bob, copies, step, field
):
    response = sales_bob.client().post(
        "/api/v1/journeys",
        {
            "name": "坏步骤",
            "trigger_event": "follow",
            "steps": [{"type": "send", "template": "copy_a", **step}],
        },
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not Journey.objects.for_org(acme).exists()


def test_the_results_of_another_organisations_journey_are_not_found(
    acme, sales_bob, outsider_erin, copies
):
    created = _journey(
        sales_bob.client(), {"type": "send", "template": "copy_a", "holdout_pct": 10}
    )
    response = outsider_erin.client().get(f"/api/v1/journeys/{created['id']}/results")
    assert response.status_code == 404
