"""Reads behind a journey's results on the journey page: per experimenting send step, each
copy's goal results and current share, the allocation history (``BanditAllocation``), the
uplift over the step's holdout and the uplift of 智能节奏 over the untimed share — all counted
from the step's outbox rows (``Delivery.journey`` / ``journey_step``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Exists, ExpressionWrapper, OuterRef, Q
from django.db.models import DateTimeField as DateTimeFieldType

from campaigns.models import (
    Arm,
    BanditAllocation,
    BanditGoal,
    Journey,
    MessageTemplate,
    Timing,
    VariantMode,
)
from campaigns.selectors import CONVERSION_EVENTS, GOAL_EVENTS, goal_counts
from campaigns.services.bandit import journey_step_copies, journey_step_rows
from campaigns.services.campaigns import uplift_itt
from crm.models import Event

ALLOCATIONS_SHOWN = 50


def is_experiment(step: dict) -> bool:
    """A send step with something to measure: several copies, a holdout or 智能节奏."""
    return step.get("type") == "send" and bool(
        step.get("variants") or step.get("holdout_pct") or step.get("best_hour")
    )


def _outcome_events(goal: str) -> tuple[str, ...]:
    """What the uplifts count as converted: the step's goal when it is an event (claim,
    redemption), else any conversion (``CONVERSION_EVENTS``, as the campaign uplift) — a
    click or a reply cannot happen in a holdout that was never sent."""
    return GOAL_EVENTS.get(goal, CONVERSION_EVENTS)


def _converted(org_id: int, events: tuple[str, ...]):
    """Per delivery row: its person did one of ``events`` from the moment the row was
    written (when the member reached the step) within the conversion window."""
    window = timedelta(days=settings.CAMPAIGNS_CONVERSION_DAYS)
    return Exists(
        Event.objects.for_org(org_id).filter(
            contact_id=OuterRef("contact_id"),
            type__in=events,
            occurred_at__gte=OuterRef("created_at"),
            occurred_at__lt=ExpressionWrapper(
                OuterRef("created_at") + window, output_field=DateTimeFieldType()
            ),
        )
    )


def journey_step_results(*, journey: Journey) -> list[dict]:
    """One entry per experimenting send step of the journey's current steps:
    ``{"step", "variant_mode", "goal", "outcome", "copies": [{"template", "name", "sent",
    "successes", "share"}], "allocations": [...], "holdout": uplift | None, "timing":
    uplift | None}``. Uplifts are by intent to treat (``uplift_itt``): a row counts in its
    arm whatever happened at send."""
    steps = journey.steps or []
    wanted = [(i, s) for i, s in enumerate(steps) if is_experiment(s)]
    if not wanted:
        return []
    keys = {k for _, s in wanted for k in journey_step_copies(s)}
    templates = {
        t.key: t for t in MessageTemplate.objects.for_org(journey.org_id).filter(key__in=keys)
    }
    allocations: dict[int, list[BanditAllocation]] = {}
    for allocation in (
        BanditAllocation.objects.for_org(journey.org_id)
        .filter(journey=journey)
        .order_by("-created_at", "-id")
    ):
        shown = allocations.setdefault(allocation.step_index, [])
        if len(shown) < ALLOCATIONS_SHOWN:
            shown.append(allocation)
    results = []
    for index, step in wanted:
        results.append(
            _step_result(journey, index, step, templates, allocations.get(index, [])[::-1])
        )
    return results


def _step_result(journey, index, step, templates, history) -> dict:
    goal = step.get("bandit_goal") or BanditGoal.CLICK
    rows = journey_step_rows(journey=journey, step_index=index)
    copies = [k for k in journey_step_copies(step) if k in templates]
    by_template = goal_counts(
        org_id=journey.org_id,
        rows=rows.filter(template_id__in=[templates[k].pk for k in copies]),
        goal=goal,
        since=journey.created_at,
        by="template_id",
    )
    latest = {a["variant"]: a["share"] for a in history[-1].arms} if history else {}
    events = _outcome_events(goal)
    converted = _converted(journey.org_id, events)
    counts = rows.annotate(converted=converted).aggregate(
        n1=Count("pk", filter=Q(arm=Arm.TREATMENT)),
        n0=Count("pk", filter=Q(arm=Arm.HOLDOUT)),
        x1=Count("pk", filter=Q(arm=Arm.TREATMENT, converted=True)),
        x0=Count("pk", filter=Q(arm=Arm.HOLDOUT, converted=True)),
        t1=Count("pk", filter=Q(timing=Timing.TIMED)),
        t0=Count("pk", filter=Q(timing=Timing.UNTIMED)),
        y1=Count("pk", filter=Q(timing=Timing.TIMED, converted=True)),
        y0=Count("pk", filter=Q(timing=Timing.UNTIMED, converted=True)),
    )
    holdout = None
    if step.get("holdout_pct") or counts["n0"]:
        holdout = uplift_itt(x1=counts["x1"], n1=counts["n1"], x0=counts["x0"], n0=counts["n0"])
        holdout["method"] = "itt_newcombe_step_vs_holdout"
    timing = None
    if step.get("best_hour") or counts["t0"]:
        timing = uplift_itt(x1=counts["y1"], n1=counts["t1"], x0=counts["y0"], n0=counts["t0"])
        timing["method"] = "itt_newcombe_timed_vs_untimed"
    return {
        "step": index,
        "variant_mode": step.get("variant_mode") or VariantMode.FIXED,
        "goal": goal,
        "outcome": list(events),
        "copies": [
            {
                "template": key,
                "name": templates[key].name,
                "sent": by_template.get(templates[key].pk, (0, 0))[1],
                "successes": by_template.get(templates[key].pk, (0, 0))[0],
                "share": latest.get(key),
            }
            for key in copies
        ],
        "allocations": [
            {"id": a.pk, "at": a.created_at, "goal": a.goal, "arms": a.arms} for a in history
        ],
        "holdout": holdout,
        "timing": timing,
    }
