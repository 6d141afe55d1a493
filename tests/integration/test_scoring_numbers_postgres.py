"""Scoring pinned by numbers on PostgreSQL: the bulk and batch SQL paths' PostgreSQL variant
(one UPDATE … FROM per chunk, EXTRACT(EPOCH …) day arithmetic) gives the hand-computed
scores of tests/crm/test_scoring_numbers.py, as the per-event Python path does."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from tests.crm.test_scoring_numbers import CASES, check_case, check_model_sum

pytestmark = [pytest.mark.integration]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("points", "condition", "max_points", "half_life", "ages", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule_points_by_hand_on_postgres(
    acme, points, condition, max_points, half_life, ages, expected
):
    assert connection.vendor == "postgresql"
    now = timezone.now().replace(microsecond=0)
    check_case(acme, now, points, condition, max_points, half_life, ages, expected)


@pytest.mark.django_db
def test_a_models_score_is_the_sum_of_its_rules_on_postgres(acme):
    assert connection.vendor == "postgresql"
    check_model_sum(acme, timezone.now().replace(microsecond=0))
