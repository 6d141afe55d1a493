"""The rule language: a rule's validation and compiled form, the organisation's scoring
model (thresholds, grades), and how many points a rule gives one contact in Python — the
semantics both paths (``per_event`` and ``bulk``) must agree on. See the package docstring."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

from core.errors import DomainError
from crm.conditions import (
    ContactFacts,
    attribute_fields,
    behaviour_leaves,
    evaluate,
    leaf_key,
    validate_condition,
)
from crm.models import ConsentPurpose, Contact, ScoringModel, ScoringRule


class InvalidRule(DomainError):
    code = "invalid_rule"


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    points: int
    condition: dict
    max_points: int | None
    half_life_days: float | None
    per_event: bool  # points × count of the single count aggregate

    @classmethod
    def of(cls, rule: ScoringRule) -> CompiledRule:
        scoring_rule_validate(
            condition=rule.condition,
            max_points=rule.max_points,
            half_life_days=rule.half_life_days,
        )
        cond = rule.condition
        per_event = rule.max_points is not None and "event" in cond and cond["agg"] == "count"
        return cls(
            id=rule.pk,
            name=rule.name,
            points=rule.points,
            condition=cond,
            max_points=rule.max_points,
            half_life_days=rule.half_life_days,
            per_event=per_event,
        )


def scoring_rule_validate(
    *, condition, max_points: int | None = None, half_life_days: float | None = None
) -> None:
    """ConditionError / InvalidRule (both 400) for a rule the engine cannot evaluate."""
    validate_condition(condition)
    circular = sorted(attribute_fields(condition) & {"score", "grade"})
    if circular:
        raise InvalidRule(
            f"a scoring rule cannot depend on '{circular[0]}' (it computes it)",
            fields={"condition": [f"'{circular[0]}' is what the rules compute"]},
        )
    if max_points is not None and max_points < 0:
        raise InvalidRule("max_points must be ≥ 0", fields={"max_points": ["≥ 0"]})
    if half_life_days is not None:
        if not (isinstance(half_life_days, int | float) and 0 < half_life_days <= 3650):
            raise InvalidRule(
                "half_life_days must be in (0, 3650]", fields={"half_life_days": ["(0, 3650]"]}
            )
        if len({leaf_key(leaf) for leaf in behaviour_leaves(condition)}) != 1:
            raise InvalidRule(
                "half_life_days needs a condition with exactly one event aggregate",
                fields={"half_life_days": ["needs exactly one event aggregate in the condition"]},
            )


def scoring_model_for(org_id: int) -> ScoringModel:
    model = ScoringModel.objects.for_org(org_id).first()
    if model is None:
        model, _ = ScoringModel.objects.for_org(org_id).get_or_create(org_id=org_id)
    return model


def active_rules(org_id: int) -> list[CompiledRule]:
    return [
        CompiledRule.of(rule)
        for rule in ScoringRule.objects.for_org(org_id).filter(is_active=True).order_by("id")
    ]


def thresholds(model: ScoringModel) -> list[tuple[int, str]]:
    return sorted(((int(g["min"]), str(g["grade"])) for g in model.grades), reverse=True)


def grade_for(score: int | None, model: ScoringModel) -> str:
    if score is None:
        return ""
    for minimum, grade in thresholds(model):
        if score >= minimum:
            return grade
    return model.fallback_grade


def decay_days(now: datetime, latest: datetime) -> int:
    """Whole days between two instants on whole seconds (the SQL path computes the same)."""
    return max(0, (math.floor(now.timestamp()) - math.floor(latest.timestamp())) // 86400)


def rule_points(rule: CompiledRule, contact: Contact, now: datetime, facts: ContactFacts) -> int:
    """The points one rule gives one contact (Python path)."""
    if not evaluate(rule.condition, contact, now, facts):
        return 0
    points = rule.points
    if rule.per_event:
        count, _ = facts.aggregate(rule.condition, now)
        points = rule.points * int(count)
    if rule.max_points is not None:
        points = max(-rule.max_points, min(rule.max_points, points))
    if rule.half_life_days:
        (leaf,) = {leaf_key(x): x for x in behaviour_leaves(rule.condition)}.values()
        _, latest = facts.aggregate(leaf, now)
        if latest is not None:
            factor = 0.5 ** (decay_days(now, latest) / float(rule.half_life_days))
            points = math.floor(points * factor + 0.5)
    return int(points)


def score_compute(
    contact: Contact,
    *,
    rules: list[CompiledRule],
    model: ScoringModel,
    now: datetime,
    facts: ContactFacts,
) -> tuple[int | None, str, dict]:
    if not facts.consent(ConsentPurpose.PROFILING):
        return None, "", {}
    breakdown = {}
    for rule in rules:
        points = rule_points(rule, contact, now, facts)
        if points:
            breakdown[str(rule.id)] = points
    score = sum(breakdown.values())
    return score, grade_for(score, model), breakdown


def grade_rank(model: ScoringModel) -> dict[str, int]:
    """Grade → rank (higher is better): the fallback grade 0, thresholds upwards; no grade
    (profiling refused) ranks below everything (-1 via ``.get(grade, -1)``)."""
    ranks = {model.fallback_grade: 0}
    for i, (_minimum, grade) in enumerate(sorted(thresholds(model))):
        ranks[grade] = i + 1
    return ranks


# Per-process memo of (model, compiled rules) per organisation for the per-event path. Rule
# and model saves clear it in this process (scoring.signals); other processes pick a change up
# within RULES_TTL seconds — and a rule change is followed by a bulk re-score anyway.
RULES_TTL = 5.0
_rules_memo: dict[int, tuple[float, ScoringModel, list[CompiledRule]]] = {}


def model_and_rules(org_id: int) -> tuple[ScoringModel, list[CompiledRule]]:
    hit = _rules_memo.get(org_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    model, rules = scoring_model_for(org_id), active_rules(org_id)
    _rules_memo[org_id] = (time.monotonic() + RULES_TTL, model, rules)
    return model, rules


def forget_rules(org_id: int | None = None) -> None:
    if org_id is None:
        _rules_memo.clear()
    else:
        _rules_memo.pop(org_id, None)


def scoring_rule_create(*, org_id: int, **fields) -> ScoringRule:
    """A new rule in the organisation's scoring model; ``fields`` are valid (scoring_rule_validate).
    Saving forgets the rules memo (crm.services.scoring.signals)."""
    return ScoringRule.objects.for_org(org_id).create(
        org_id=org_id, model=scoring_model_for(org_id), **fields
    )


def scoring_rule_update(*, rule: ScoringRule, changes: dict) -> ScoringRule:
    for field, value in changes.items():
        setattr(rule, field, value)
    rule.save()
    return rule


def scoring_rule_delete(*, rule: ScoringRule) -> None:
    rule.delete()
