"""POST /api/v1/scoring-rules/{id}/preview: how many leads an edited rule matches and how many
would change grade once re-scored (the rule editor's live preview); admins only, nothing saved,
a bad condition answered 400 naming its part."""

import pytest

from crm.demo import seed_scoring_model
from crm.models import ScoringRule
from crm.services.scoring import contact_rescore
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(acme):
    seed_scoring_model(acme)
    # 女性 20 + 25–35岁 30 = 50 (B) twice in 上海, once in 北京; one man (C).
    made = [
        ContactFactory(org=acme, gender="female", birth_year=1996, city=city, income_level="")
        for city in ("上海", "上海", "北京")
    ] + [ContactFactory(org=acme, gender="male", birth_year=None, city="上海", income_level="")]
    for contact in made:
        contact_rescore(contact=contact)
    return made


def test_the_preview_counts_matches_and_grade_moves_without_saving(leads, acme, admin_carol):
    rule = ScoringRule.objects.for_org(acme).get(name="女性")
    url = f"/api/v1/scoring-rules/{rule.pk}/preview"
    client = admin_carol.client()
    # 女性 only in 上海: the 北京 woman loses 20 (B -> C); the 上海 ones keep theirs.
    city = {"all": [{"field": "gender", "op": "eq", "value": "female"},
                    {"field": "city", "op": "eq", "value": "上海"}]}  # fmt: skip
    response = client.post(url, {"condition": city, "points": 20}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"matching": 2, "moved": 1, "moved_up": 0, "moved_down": 1}
    # Worth 50 to every woman: all three reach 80 (A).
    same = {"field": "gender", "op": "eq", "value": "female"}
    response = client.post(url, {"condition": same, "points": 50}, format="json")
    assert response.json() == {"matching": 3, "moved": 3, "moved_up": 3, "moved_down": 0}
    # Switched off: all three drop to 30 (C).
    response = client.post(
        url, {"condition": same, "points": 20, "is_active": False}, format="json"
    )
    assert response.json()["moved_down"] == 3
    rule.refresh_from_db()
    assert (rule.points, rule.condition) == (20, same)  # nothing saved


def test_a_bad_condition_is_a_400_naming_its_part_and_sales_may_not(
    leads, acme, admin_carol, sales_bob
):
    rule = ScoringRule.objects.for_org(acme).get(name="女性")
    url = f"/api/v1/scoring-rules/{rule.pk}/preview"
    bad = {"all": [{"field": "gender", "op": "eq", "value": "female"},
                   {"field": "gender", "op": "eq", "value": "robot"}]}  # fmt: skip
    response = admin_carol.client().post(url, {"condition": bad, "points": 20}, format="json")
    assert response.status_code == 400
    assert "all[1]" in str(response.json()["fields"]["condition"])
    good = {"field": "gender", "op": "eq", "value": "female"}
    refused = sales_bob.client().post(url, {"condition": good, "points": 20}, format="json")
    assert refused.status_code == 403
