"""Scoring pinned by numbers: decay and caps give hand-computed scores on every path.

The property test (test_scoring_property.py) only checks that the paths agree; a formula bug
shared by both would pass it. Here each expected value is worked out by hand from the rule
documented in crm/services/scoring/__init__.py:

- decay: ``floor(p × 0.5^(days / half_life) + 0.5)`` with ``days`` the WHOLE days since the
  latest matching event (so halves round up: 2.5 → 3, -2.5 → -2);
- ``max_points`` on a single count condition gives ``points × count``, and clips any rule's
  points to ±max_points, before decay;
- a model's score is the sum of its rules' (capped, decayed) points; the grade comes from its
  thresholds.

Every case runs through the per-event Python path (``contact_rescore``), the bulk SQL path
(``org_rescore``) and the batch SQL path (``contacts_rescore``); the PostgreSQL variant of the
SQL paths is tests/integration/test_scoring_numbers_postgres.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Contact
from crm.services.scoring import contact_rescore, contacts_rescore, org_rescore
from tests.crm.factories import EventFactory, RuleFactory, ScoringModelFactory
from tests.factories import ContactFactory

CLAIMS = {"event": "coupon.claim", "agg": "count", "window_days": 60, "op": "gte", "value": 1}
FEMALE = {"field": "gender", "op": "eq", "value": "female"}
DAY = 86400

# (id, points, condition, max_points, half_life_days, event ages in seconds, expected points)
CASES = [
    ("fresh event, no decay", 10, CLAIMS, None, 7.0, [0], 10),
    ("one half-life -> half", 10, CLAIMS, None, 7.0, [7 * DAY], 5),
    ("two half-lives -> 2.5 rounds up to 3", 10, CLAIMS, None, 7.0, [14 * DAY], 3),
    ("three half-lives -> 1.25 -> 1", 10, CLAIMS, None, 7.0, [21 * DAY], 1),
    ("negative: -2.5 rounds up to -2", -10, CLAIMS, None, 7.0, [14 * DAY], -2),
    # 3 days 23 hours are 3 whole days: 10 × 0.5^(3/7) = 7.43 -> 7
    ("whole days only", 10, CLAIMS, None, 7.0, [4 * DAY - 3600], 7),
    ("the latest matching event decides", 10, CLAIMS, None, 7.0, [14 * DAY, 7 * DAY], 5),
    ("half-life of 2.5 days at 5 days -> quarter", 20, CLAIMS, None, 2.5, [5 * DAY], 5),
    ("per event under the cap: 3 × 3", 3, CLAIMS, 10, None, [DAY] * 3, 9),
    ("per event at the cap: 3 × 4 = 12 -> 10", 3, CLAIMS, 10, None, [DAY] * 4, 10),
    ("negative per event: -5 × 3 = -15 -> -12", -5, CLAIMS, 12, None, [DAY] * 3, -12),
    ("cap before decay: 4 × 3 = 12 -> 10 -> 5", 4, CLAIMS, 10, 7.0, [7 * DAY] * 3, 5),
    ("attribute rule clipped: 50 -> 20", 50, FEMALE, 20, None, [], 20),
    ("max_points 0 gives nothing", 10, CLAIMS, 0, None, [DAY], 0),
]


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def _contact(org, ages, now):
    contact = ContactFactory(org=org, gender="female")
    for age in ages:
        EventFactory(
            org=org, contact=contact, type="coupon.claim", occurred_at=now - timedelta(seconds=age)
        )
    return contact


def _reset(contact):
    Contact.unscoped.filter(pk=contact.pk).update(score=None, grade="", score_breakdown={})


def scores_on_every_path(contact, now) -> dict[str, tuple]:
    """path → (score, grade, breakdown) computed from scratch by that path."""
    out = {}
    _reset(contact)
    contact_rescore(contact=contact, now=now)
    c = Contact.unscoped.get(pk=contact.pk)
    out["per-event python"] = (c.score, c.grade, c.score_breakdown)
    _reset(contact)
    org_rescore(org_id=contact.org_id, now=now)
    c = Contact.unscoped.get(pk=contact.pk)
    out["bulk sql"] = (c.score, c.grade, c.score_breakdown)
    _reset(contact)
    contacts_rescore(org_id=contact.org_id, reasons={contact.pk: "event"}, now=now)
    c = Contact.unscoped.get(pk=contact.pk)
    out["batch sql"] = (c.score, c.grade, c.score_breakdown)
    return out


def check_case(org, now, points, condition, max_points, half_life, ages, expected):
    model = ScoringModelFactory(org=org, grades=[{"grade": "A", "min": 100}])
    rule = RuleFactory(
        org=org,
        model=model,
        points=points,
        condition=condition,
        max_points=max_points,
        half_life_days=half_life,
    )
    contact = _contact(org, ages, now)
    breakdown = {str(rule.pk): expected} if expected else {}
    want = (expected, "A" if expected >= 100 else "C", breakdown)
    assert scores_on_every_path(contact, now) == {
        "per-event python": want,
        "bulk sql": want,
        "batch sql": want,
    }


@pytest.mark.parametrize(
    ("points", "condition", "max_points", "half_life", "ages", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule_points_by_hand(acme, now, points, condition, max_points, half_life, ages, expected):
    check_case(acme, now, points, condition, max_points, half_life, ages, expected)


def check_model_sum(org, now):
    """Three rules of one model, each capped or decayed on its own; the score is their sum and
    the grade follows the model's thresholds."""
    model = ScoringModelFactory(
        org=org, grades=[{"grade": "A", "min": 40}, {"grade": "B", "min": 30}], fallback_grade="C"
    )
    per_claim = RuleFactory(org=org, model=model, points=3, condition=CLAIMS, max_points=10)
    decayed = RuleFactory(
        org=org, model=model, points=10, condition=CLAIMS, half_life_days=7.0, max_points=None
    )
    capped = RuleFactory(org=org, model=model, points=50, condition=FEMALE, max_points=20)
    # 4 claims, the latest 7 days ago: 3 × 4 = 12 -> 10; 10 at one half-life -> 5; 50 -> 20.
    contact = _contact(org, [9 * DAY, 8 * DAY, 8 * DAY, 7 * DAY], now)
    want = (35, "B", {str(per_claim.pk): 10, str(decayed.pk): 5, str(capped.pk): 20})
    assert scores_on_every_path(contact, now) == {
        "per-event python": want,
        "bulk sql": want,
        "batch sql": want,
    }


def test_a_models_score_is_the_sum_of_its_capped_and_decayed_rules(acme, now):
    check_model_sum(acme, now)
