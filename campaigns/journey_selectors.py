"""Reads behind a journey's results on the journey page: per experimenting send step, each
copy's goal results and current share, the allocation history (``BanditAllocation``), the
uplift over the step's holdout and the uplift of 智能节奏 over the untimed share — all counted
from the step's outbox rows (``Delivery.journey`` / ``journey_step``)."""

from __future__ import annotations

import math
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
from campaigns.selectors import CONVERSION_EVENTS, GOAL_EVENTS, REACHED, goal_counts
from campaigns.services.bandit import journey_step_copies, journey_step_rows
from campaigns.services.campaigns import uplift_itt
from crm.models import Event

ALLOCATIONS_SHOWN = 50
# The normal quantile of a two-sided 95 % interval.
Z95 = 1.959964


def rate_wilson(*, x: int, n: int) -> dict:
    """``x`` of ``n`` as ``{"n", "converted", "rate", "ci95"}`` with the Wilson score
    interval (sound at the small rates and small groups a step sees, where the Wald interval
    collapses to a point at 0 %); rate and interval are None when ``n`` is 0."""
    if not n:
        return {"n": 0, "converted": x, "rate": None, "ci95": None}
    p = x / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return {
        "n": n,
        "converted": x,
        "rate": round(p, 4),
        "ci95": [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)],
    }


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
    "successes", "share", "conversion": rate, "vs_holdout": uplift | None}], "allocations":
    [{"id", "at", "goal", "arms": [{..., "assigned", "sent"}], "assigned", "sent"}],
    "unallocated_sent", "holdout_conversion": rate | None, "holdout": uplift | None,
    "timing": uplift | None}`` (rate: ``rate_wilson``). Uplifts are by intent to treat
    (``uplift_itt``): a row counts in its arm whatever happened at send."""
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


def _allocation_counts(rows, history, templates) -> dict[int, dict[int, tuple[int, int]]]:
    """``{allocation id: {template id: (assigned, sent)}}`` of the step's rows chosen by the
    shown allocations, in ONE grouped query: assigned = members the allocation gave a copy,
    sent = those whose message reached them (``REACHED``)."""
    if not history:
        return {}
    grouped = (
        rows.filter(allocation_id__in=[a.pk for a in history])
        .values("allocation_id", "template_id")
        .annotate(assigned=Count("pk"), sent=Count("pk", filter=Q(status__in=REACHED)))
        .order_by()
    )
    counts: dict[int, dict[int, tuple[int, int]]] = {}
    for r in grouped:
        counts.setdefault(r["allocation_id"], {})[r["template_id"]] = (r["assigned"], r["sent"])
    return counts


def _allocation_out(allocation, counts: dict[int, tuple[int, int]], templates) -> dict:
    """One allocation as shown: each copy's share with the members it was given and the
    messages sent under it. A member switched to the recall fallback copy counts in the
    allocation's totals only (the fallback is not one of its copies)."""
    arms = []
    for arm in allocation.arms:
        template = templates.get(arm["variant"])
        assigned, sent = counts.get(template.pk, (0, 0)) if template else (0, 0)
        arms.append({**arm, "assigned": assigned, "sent": sent})
    return {
        "id": allocation.pk,
        "at": allocation.created_at,
        "goal": allocation.goal,
        "arms": arms,
        "assigned": sum(a for a, _ in counts.values()),
        "sent": sum(s for _, s in counts.values()),
    }


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
        # Sent rows no allocation chose: fixed mode, or rows written before rows named it.
        unallocated=Count("pk", filter=Q(allocation__isnull=True, status__in=REACHED)),
    )
    # Each copy against the holdout on the same footing: every member the copy was chosen
    # for (intent to treat), converted by the same events within the same window.
    per_copy = {
        r["template_id"]: (r["x"], r["n"])
        for r in rows.exclude(arm=Arm.HOLDOUT)
        .filter(template_id__in=[templates[k].pk for k in copies])
        .annotate(converted=converted)
        .values("template_id")
        .annotate(n=Count("pk"), x=Count("pk", filter=Q(converted=True)))
        .order_by()
    }
    by_allocation = _allocation_counts(rows, history, templates)
    holdout = None
    if step.get("holdout_pct") or counts["n0"]:
        holdout = uplift_itt(x1=counts["x1"], n1=counts["n1"], x0=counts["x0"], n0=counts["n0"])
        holdout["method"] = "itt_newcombe_step_vs_holdout"
    timing = None
    if step.get("best_hour") or counts["t0"]:
        timing = uplift_itt(x1=counts["y1"], n1=counts["t1"], x0=counts["y0"], n0=counts["t0"])
        timing["method"] = "itt_newcombe_timed_vs_untimed"
    held_out = step.get("holdout_pct") or counts["n0"]
    copies_out = []
    for key in copies:
        pk = templates[key].pk
        x, n = per_copy.get(pk, (0, 0))
        vs_holdout = None
        if held_out:
            vs_holdout = uplift_itt(x1=x, n1=n, x0=counts["x0"], n0=counts["n0"])
            vs_holdout["method"] = "itt_newcombe_copy_vs_holdout"
        copies_out.append(
            {
                "template": key,
                "name": templates[key].name,
                "sent": by_template.get(pk, (0, 0))[1],
                "successes": by_template.get(pk, (0, 0))[0],
                "share": latest.get(key),
                "conversion": rate_wilson(x=x, n=n),
                "vs_holdout": vs_holdout,
            }
        )
    return {
        "step": index,
        "variant_mode": step.get("variant_mode") or VariantMode.FIXED,
        "goal": goal,
        "outcome": list(events),
        "copies": copies_out,
        "allocations": [
            _allocation_out(a, by_allocation.get(a.pk, {}), templates) for a in history
        ],
        "unallocated_sent": counts["unallocated"],
        # Never allocated, never sent: the held-out members and their conversion, apart.
        "holdout_conversion": rate_wilson(x=counts["x0"], n=counts["n0"]) if held_out else None,
        "holdout": holdout,
        "timing": timing,
    }
