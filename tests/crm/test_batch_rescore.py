"""``contacts_rescore`` names its contacts' ids in the statement: widely scattered ids (returning
viewers re-joining a room) cost a statement per chunk of ids, not one per contact, with the
outcome of ``contact_rescore`` run for each of them."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crm.demo import seed_scoring_model
from crm.models import Consent, Contact, Event, ScoreHistory, ScoringRule
from crm.services import scoring
from crm.services.scoring import bulk
from crm.services.scoring.rules import grade_for
from crm.services.scoring.sql import scores_select_sql
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

LEADS, EVERY = 3_000, 97


def _leads(org) -> list[Contact]:
    """LEADS leads with events of every kind the rules read, and a mix of starting states:
    never scored, a stale score (up- and downgrades), already right, profiling refused,
    merged away, erased."""
    model = seed_scoring_model(org)
    # Beyond the demo model: points per event (clipped) and a decaying rule, so the id filter
    # also narrows the count and latest-event columns.
    ScoringRule.objects.for_org(org).create(
        org=org,
        model=model,
        name="点赞",
        points=2,
        max_points=10,
        condition={"event": "like", "agg": "count", "op": "gte", "value": 1},
    )
    ScoringRule.objects.for_org(org).create(
        org=org,
        model=model,
        name="近期来过",
        points=12,
        half_life_days=7.0,
        condition={
            "event": "room.join",
            "agg": "count",
            "window_days": 60,
            "op": "gte",
            "value": 1,
        },
    )
    rng = random.Random(97)
    now = timezone.now()
    contacts = Contact.objects.for_org(org).bulk_create(
        Contact(
            org=org,
            nickname=f"观众{i}",
            gender=rng.choice(["female", "male", "unknown"]),
            birth_year=rng.choice([None, now.year - 22, now.year - 30, now.year - 50]),
            income_level=rng.choice(["high", "middle", "low"]),
            score=rng.choice([None, None, 95, 60, 10]),
            grade="",
        )
        for i in range(LEADS)
    )
    events = []
    for c in contacts:
        for _ in range(rng.randint(0, 5)):
            type_ = rng.choice(["room.join", "room.leave", "chat", "like", "order", "coupon.claim"])
            seconds = rng.choice([0, 300, 900])
            events.append(
                Event(
                    org=org,
                    contact=c,
                    type=type_,
                    occurred_at=now - timedelta(days=rng.randint(0, 45), hours=rng.randint(0, 23)),
                    room_id=7,
                    value=seconds if type_ == "room.leave" else None,
                    props={"watch_seconds": seconds} if type_ == "room.leave" else {},
                )
            )
    Event.objects.for_org(org).bulk_create(events)
    for c in contacts:  # stale grades to move from
        if c.score is not None:
            c.grade = grade_for(c.score, model)
            c.score_breakdown = {"0": c.score}
    Contact.objects.for_org(org).bulk_update(contacts, ["grade", "score_breakdown"])
    chosen = contacts[::EVERY]
    for c in chosen[1:4]:
        Consent.objects.for_org(org).create(org=org, contact=c, purpose="profiling", granted=False)
    for c in chosen[4:7]:  # already scored right: nothing to write
        scoring.contact_rescore(contact=c, reason="earlier")
    Contact.objects.for_org(org).filter(pk=chosen[7].pk).update(merged_into=chosen[8])
    Contact.objects.for_org(org).filter(pk=chosen[9].pk).update(erased_at=now)
    return contacts


def _outcome(org, contacts, heard) -> dict:
    history = {}
    for h in ScoreHistory.objects.for_org(org).order_by("id"):
        history.setdefault(h.contact_id, []).append(
            (h.score, h.grade, h.old_score, h.old_grade, h.reason)
        )
    rows = Contact.objects.for_org(org).in_bulk([c.pk for c in contacts])
    return {
        "scores": {
            pk: (c.score, c.grade, c.score_breakdown, c.scored_at is not None)
            for pk, c in rows.items()
        },
        "history": history,
        "announced": list(heard),
    }


@pytest.mark.parametrize("batch_ids", [bulk.BATCH_IDS, 8])
def test_scattered_ids_cost_a_statement_per_chunk_and_score_as_one_by_one(
    acme,
    other_org,
    announced,
    batch_ids,
    monkeypatch,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    contacts = _leads(acme)
    erin = ContactFactory(org=other_org)  # another organisation's: left alone
    chosen = [c.pk for c in contacts[::EVERY]]
    order = random.Random(5).sample(chosen, len(chosen)) + [erin.pk, 10**9]
    reasons = {cid: ["room.join", "room.leave", "like"][i % 3] for i, cid in enumerate(order)}
    now = timezone.now()
    scoring.model_and_rules(acme.pk)  # warm the rules memo
    with transaction.atomic():
        announced.clear()
        with django_capture_on_commit_callbacks(execute=True):
            for cid, reason in reasons.items():
                scoring.contact_rescore(org_id=acme.pk, contact_id=cid, reason=reason, now=now)
        one_by_one = _outcome(acme, contacts, announced)
        transaction.set_rollback(True)

    monkeypatch.setattr(bulk, "BATCH_IDS", batch_ids)
    chunks = math.ceil(len(reasons) / batch_ids)
    announced.clear()
    # Per chunk of ids: its statement in a savepoint (SQLite: the read and two executemany
    # writes) and the read of its contacts whose grade moved; the listeners run afterwards. The
    # old range chunks took one per contact here (31).
    with (
        django_capture_on_commit_callbacks(execute=True),
        django_assert_max_num_queries(6 * chunks),
    ):
        changed = scoring.contacts_rescore(org_id=acme.pk, reasons=reasons, now=now)
    batched = _outcome(acme, contacts, announced)

    assert batched == one_by_one
    assert changed == len(one_by_one["history"]) - 3  # the three scored right before
    assert any(old and new and old != new for _cid, old, new in batched["announced"])
    assert any(not old for _cid, old, _new in batched["announced"])
    # The chosen ids' neighbours (whose events lie in the same id ranges) were not touched.
    assert not ScoreHistory.objects.for_org(acme).exclude(contact_id__in=chosen).exists()
    unchosen = Contact.objects.for_org(acme).exclude(pk__in=chosen).filter(scored_at__isnull=False)
    assert not unchosen.exists()


def test_a_sqlite_chunk_stays_under_the_bind_parameter_limit(acme, monkeypatch):
    from crm.services import events

    seed_scoring_model(acme)
    monkeypatch.setattr(events, "max_query_params", lambda: 999)
    _model, rules = scoring.model_and_rules(acme.pk)
    per = bulk._ids_per_statement(org_id=acme.pk, rules=rules, now=timezone.now())
    ids = list(range(1, per + 1))
    _sql, params = scores_select_sql(
        org_id=acme.pk, rules=rules, now=timezone.now(), contact_ids=ids
    )
    if connection.vendor == "postgresql":
        assert per == bulk.BATCH_IDS
        assert len(params) < 999  # the ids are one array parameter
    else:
        assert 400 <= per < 500  # the ids come twice: the contacts and their events
        assert len(params) <= 999
