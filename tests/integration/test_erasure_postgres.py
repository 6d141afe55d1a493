"""Erasure on real PostgreSQL: the person who touched every feature leaves none of their values
in any table (every text, char and JSON column scanned), two people sharing every unique key
space erase cleanly, a second erasure changes nothing, and the demo seeds again."""

from __future__ import annotations

import pytest
from django.db import connection

from crm.services.privacy import contact_erase
from tests.support.personal_data import (
    all_values_in_database,
    person_who_touched_everything,
    where_found,
)

pytestmark = [pytest.mark.integration]


@pytest.mark.django_db
def test_erasure_reaches_every_table_on_postgres(acme, host_alice, admin_carol, sales_bob):
    assert connection.vendor == "postgresql"
    actors = {"host": host_alice, "admin": admin_carol, "sales": sales_bob}
    first = person_who_touched_everything(acme, **actors)
    second = person_who_touched_everything(acme, **actors, tag="乙", phone="13987654321")
    seconds_before = where_found(second.secrets)
    assert len(where_found(first.secrets)) == len(first.secrets) - 4  # 4 only stored encrypted

    contact_erase(contact=first.contact)
    assert where_found(first.secrets) == {}
    assert where_found(second.secrets) == seconds_before

    contact_erase(contact=second.contact)
    assert where_found(second.secrets) == {}

    # Sorted: a table read without ORDER BY comes back in PostgreSQL's physical order, which
    # an UPDATE that rewrites a row with the same values may change.
    snapshot = sorted(v for v in all_values_in_database() if v[0] != "core_auditlog")
    contact_erase(contact=second.contact)
    assert sorted(v for v in all_values_in_database() if v[0] != "core_auditlog") == snapshot


@pytest.mark.django_db(transaction=True)
def test_seed_demo_starts_again_after_erasures_on_postgres():
    from django.core.management import call_command

    from tests.crm.test_erasure import erase_one_demo_lead_of_each_kind

    call_command("seed_demo")
    erased = erase_one_demo_lead_of_each_kind()
    call_command("seed_demo")
    assert all(c.erased_at for c in erased)
