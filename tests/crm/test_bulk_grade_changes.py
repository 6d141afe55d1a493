"""A bulk re-score that lifts leads into a higher grade tells the grade listeners (hot-lead
routing, journeys) after each chunk commits, in background batches; downgrades stay quiet."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm.demo import seed_scoring_model
from crm.models import Contact, Notification, ScoringRule, Task
from crm.services import scoring
from crm.services.scoring import bulk, grades, on_grade_changed, org_rescore
from tests.factories import RoomFactory


@pytest.fixture
def heard(acme):
    """What the grade listeners were told: a listener registered for this test only."""
    calls: list[tuple[int, str, str]] = []

    def listener(contact, old_grade, new_grade):
        calls.append((contact.pk, old_grade, new_grade))

    on_grade_changed(listener)
    yield calls
    grades._grade_listeners.remove(listener)


def _leads(org, n: int, **attrs) -> list[Contact]:
    return [
        Contact.objects.for_org(org).create(org=org, nickname=f"线索{i}", **attrs) for i in range(n)
    ]


def _rule(org, name: str, points: int, cond: dict) -> ScoringRule:
    model = scoring.scoring_model_for(org.pk)
    return ScoringRule.objects.for_org(org).create(
        org=org, model=model, name=name, points=points, condition=cond
    )


def test_bulk_upgrades_reach_the_listeners_in_batches(
    acme, heard, monkeypatch, django_capture_on_commit_callbacks
):
    seed_scoring_model(acme)  # A ≥ 80, B ≥ 50, else C
    year = timezone.now().year
    risers = _leads(acme, 5, gender="female", birth_year=year - 30)  # 50 → B
    fallers = _leads(acme, 2, gender="male", birth_year=year - 30)  # 30 → C
    with django_capture_on_commit_callbacks(execute=True):
        first = org_rescore(org_id=acme.pk, chunk_size=3)
    # The first scoring grades leads that had none: nothing crosses, nothing is announced.
    assert first.changed == 7 and first.upgraded == 0 and heard == []

    vip = _rule(acme, "女性会员", 40, {"field": "gender", "op": "eq", "value": "female"})
    _rule(acme, "男性扣分", -40, {"field": "gender", "op": "eq", "value": "male"})
    monkeypatch.setattr(bulk, "GRADE_BATCH", 2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = org_rescore(org_id=acme.pk, chunk_size=3)
    assert result.changed == 7 and result.upgraded == 5
    assert sorted(heard) == sorted((c.pk, "B", "A") for c in risers)
    assert not {pk for pk, _o, _n in heard} & {c.pk for c in fallers}
    # Chunks of 3 leads, batches of 2 upgrades: 2 + 1 (first chunk), 2 (second chunk).
    assert len([cb for cb in callbacks if cb.__qualname__.startswith("enqueue.")]) == 3
    assert vip.pk  # the rule that lifted them


def test_bulk_upgrade_to_the_top_grade_during_a_live_room_is_routed(
    acme, host_alice, sales_bob, django_capture_on_commit_callbacks
):
    seed_scoring_model(acme)
    year = timezone.now().year
    (lead,) = _leads(acme, 1, gender="female", birth_year=year - 30, income_level="high")
    org_rescore(org_id=acme.pk)
    lead.refresh_from_db()
    assert lead.grade == "B"

    # No live room: the upgrade is announced, hot-lead routing does nothing.
    _rule(acme, "高收入女性", 20, {"field": "income_level", "op": "eq", "value": "high"})
    with django_capture_on_commit_callbacks(execute=True):
        assert org_rescore(org_id=acme.pk).upgraded == 1
    lead.refresh_from_db()
    assert lead.grade == "A" and lead.owner_id is None
    assert not Task.objects.for_org(acme).exists()

    # Back to B, then lifted again while a room is live: routed at once.
    rule = ScoringRule.objects.for_org(acme).get(name="高收入女性")
    rule.is_active = False
    rule.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert org_rescore(org_id=acme.pk).upgraded == 0  # a downgrade is not announced
    RoomFactory(org=acme, streamer=host_alice.profile, status="live")
    rule.is_active = True
    rule.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert org_rescore(org_id=acme.pk).upgraded == 1
    lead.refresh_from_db()
    assert (lead.grade, lead.owner_id) == ("A", sales_bob.user.pk)
    task = Task.objects.for_org(acme).get(contact=lead, kind="hot_lead")
    assert task.assignee_id == sales_bob.user.pk
    assert Notification.objects.for_org(acme).filter(user=sales_bob.user, kind="hot_lead").exists()


def test_a_lead_that_moved_again_before_the_batch_ran_is_not_announced(acme, heard):
    seed_scoring_model(acme)
    (lead,) = _leads(acme, 1, gender="female")
    Contact.objects.for_org(acme).filter(pk=lead.pk).update(grade="C")
    # The batch says '' → B, but the lead is at C now: its own change spoke for it.
    assert scoring.grade_changes_notify(org_id=acme.pk, changes=[[lead.pk, "", "B"]]) == 0
    assert heard == []
