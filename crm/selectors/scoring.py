"""Reads of scoring rules: the list and the rule editor's live preview."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.conditions import contacts_matching
from crm.models import ScoringRule
from crm.selectors.leads import live_contacts
from crm.services.scoring import grade_for, scoring_model_for


def scoring_rule_preview(*, rule, condition: dict, points: int, is_active: bool = True) -> dict:
    """What saving ``rule`` with this condition, points and on/off would do once re-scored:
    how many scored leads match, and how many would change grade (up, down). Each lead's
    stored score is taken with this rule's stored points replaced by the edited rule's (a
    preview: caps and decay of the rule aside, the re-score decides). ``condition`` must be
    valid (crm.services.scoring.scoring_rule_validate)."""

    model = scoring_model_for(rule.org_id)
    scored = live_contacts(rule.org_id).filter(score__isnull=False)
    matching = set(
        contacts_matching(rule.org_id, condition)
        .filter(score__isnull=False)
        .values_list("pk", flat=True)
    )
    key = str(rule.pk)
    up = down = 0
    rows = scored.values_list("pk", "score", "grade", "score_breakdown")
    for pk, score, grade, breakdown in rows.iterator(chunk_size=2000):
        old = breakdown.get(key, 0) if isinstance(breakdown, dict) else 0
        new = points if is_active and pk in matching else 0
        if new == old:
            continue
        if grade_for(score - old + new, model) != grade:
            if new > old:
                up += 1
            else:
                down += 1
    return {"matching": len(matching), "moved": up + down, "moved_up": up, "moved_down": down}


def scoring_rule_list(org_id: int) -> QuerySet:
    return ScoringRule.objects.for_org(org_id).order_by("id")
