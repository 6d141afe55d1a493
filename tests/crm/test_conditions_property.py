"""The condition language: the SQL compiler and the Python evaluator give the same answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.conditions import contact_matches, contacts_matching, load_facts
from crm.models import Consent, Contact, Event
from tests.crm.strategies import (
    SUMMABLE,
    attribute_leaf,
    behaviour_leaf,
    condition,
    contact_spec,
)

NOW = timezone.now().replace(microsecond=250_000)


class Rollback(Exception):
    pass


def make_contacts(org, specs):
    contacts = []
    for spec in specs:
        contact = Contact.objects.for_org(org).create(
            org=org,
            gender=spec["gender"],
            city=spec["city"],
            birth_year=spec["birth_year"],
            score=spec["score"],
            tags=spec["tags"],
        )
        for purpose, granted in spec["consents"].items():
            Consent.objects.for_org(org).create(
                org=org, contact=contact, purpose=purpose, granted=granted
            )
        Event.objects.for_org(org).bulk_create(
            Event(
                org=org,
                contact=contact,
                type=type_,
                occurred_at=at,
                room_id=room,
                value=value if type_ in SUMMABLE else None,
            )
            for type_, at, room, value in spec["events"]
        )
        contacts.append(contact)
    return contacts


def _check(org, conds, specs):
    # Several conditions per generated population: cheap coverage of every (field, op).
    try:
        with transaction.atomic():
            contacts = make_contacts(org, specs)
            for cond in conds:
                by_sql = set(contacts_matching(org, cond, now=NOW).values_list("id", flat=True))
                by_python = {
                    c.pk
                    for c in contacts
                    if contact_matches(c, cond, now=NOW, facts=load_facts(c, [cond]))
                }
                assert by_sql == by_python, cond
            raise Rollback
    except Rollback:
        pass


PROPERTY = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.django_db
@PROPERTY
@given(
    conds=st.lists(st.one_of(attribute_leaf(), behaviour_leaf()), min_size=12, max_size=12),
    specs=st.lists(contact_spec(NOW), min_size=1, max_size=5),
)
def test_every_leaf_means_the_same_in_sql_and_python(acme, conds, specs):
    _check(acme, conds, specs)


@pytest.mark.django_db
@PROPERTY
@given(
    conds=st.lists(condition(), min_size=4, max_size=4),
    specs=st.lists(contact_spec(NOW), min_size=1, max_size=5),
)
def test_nested_conditions_mean_the_same_in_sql_and_python(acme, conds, specs):
    _check(acme, conds, specs)


def test_window_boundary_is_inclusive_on_both_paths(acme):
    contact = Contact.objects.for_org(acme).create(org=acme)
    Event.objects.for_org(acme).create(
        org=acme, contact=contact, type="coupon.claim", occurred_at=NOW - timedelta(days=7)
    )
    cond = {"event": "coupon.claim", "agg": "count", "window_days": 7, "op": "gte", "value": 1}
    assert contact_matches(contact, cond, now=NOW)
    assert list(contacts_matching(acme, cond, now=NOW)) == [contact]
