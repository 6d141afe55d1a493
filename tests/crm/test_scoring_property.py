"""Scoring: the per-contact Python path and the set-based bulk SQL path give the same scores,
grades and breakdowns for random rules and random histories."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.conditions import attribute_fields, behaviour_leaves, leaf_key
from crm.models import Contact, ScoringModel, ScoringRule
from crm.services.scoring import org_rescore, scoring_model_for
from crm.services.scoring.per_event import facts_for
from crm.services.scoring.rules import active_rules, score_compute
from tests.crm.strategies import behaviour_leaf, condition, contact_spec
from tests.crm.test_conditions_property import NOW, Rollback, make_contacts


@st.composite
def rule_spec(draw):
    kind = draw(st.sampled_from(["tree", "count", "decay"]))
    if kind == "count":
        cond = draw(behaviour_leaf().filter(lambda x: x["agg"] == "count"))
    elif kind == "decay":
        cond = draw(behaviour_leaf())
        if draw(st.booleans()):
            cond = {"not": cond} if draw(st.booleans()) else {"all": [cond]}
    else:
        cond = draw(
            condition(max_leaves=4).filter(lambda c: not attribute_fields(c) & {"score", "grade"})
        )
    single = len({leaf_key(x) for x in behaviour_leaves(cond)}) == 1
    return {
        "points": draw(st.integers(-30, 40)),
        "condition": cond,
        "max_points": draw(st.one_of(st.none(), st.integers(0, 50))),
        "half_life_days": draw(st.sampled_from([1.0, 2.5, 7.0])) if single else None,
    }


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rules=st.lists(rule_spec(), min_size=1, max_size=4),
    grades=st.lists(st.integers(-20, 60), min_size=0, max_size=2, unique=True),
    specs=st.lists(contact_spec(NOW), min_size=1, max_size=5),
)
def test_bulk_sql_and_per_contact_scores_agree(acme, rules, grades, specs):
    try:
        with transaction.atomic():
            model = scoring_model_for(acme.pk)
            ScoringModel.objects.for_org(acme).filter(pk=model.pk).update(
                grades=[{"grade": "ABC"[i], "min": m} for i, m in enumerate(sorted(grades)[::-1])]
            )
            for i, spec in enumerate(rules):
                ScoringRule.objects.for_org(acme).create(
                    org=acme, model=model, name=f"r{i}", **spec
                )
            contacts = make_contacts(acme, specs)
            org_rescore(org_id=acme.pk, now=NOW, chunk_size=2)
            model.refresh_from_db()
            compiled = active_rules(acme.pk)
            for contact in contacts:
                contact.refresh_from_db()
                expected = score_compute(
                    contact,
                    rules=compiled,
                    model=model,
                    now=NOW,
                    facts=facts_for(contact, compiled, NOW),
                )
                got = (contact.score, contact.grade, contact.score_breakdown)
                assert got == expected, (rules, contact.pk)
                if expected[0] is not None:
                    assert sum(expected[2].values()) == expected[0]
            # A second run changes nothing: only changed rows are written.
            assert org_rescore(org_id=acme.pk, now=NOW).changed == 0
            raise Rollback
    except Rollback:
        pass


def test_refusing_profiling_removes_the_score(acme):
    model = scoring_model_for(acme.pk)
    ScoringRule.objects.for_org(acme).create(
        org=acme,
        model=model,
        name="女性",
        points=20,
        condition={"field": "gender", "op": "eq", "value": "female"},
    )
    contact = Contact.objects.for_org(acme).create(org=acme, gender="female")
    org_rescore(org_id=acme.pk, now=timezone.now())
    contact.refresh_from_db()
    assert contact.score == 20

    from crm.services.consent import consent_withdraw

    consent_withdraw(contact=contact, purpose="profiling", source="h5", evidence={"ip": "1.2.3.4"})
    contact.refresh_from_db()
    assert (contact.score, contact.grade, contact.score_breakdown) == (None, "", {})
    org_rescore(org_id=acme.pk)
    contact.refresh_from_db()
    assert contact.score is None
