"""自动优化: a campaign's default copy, or a journey send step's copy, chosen by a
multi-armed bandit (journey steps: see "journey send steps" below).

For a campaign with ``variant_mode = bandit`` planning draws the holdout exactly as for a
fixed split (``planning.campaign_plan``: the same hash, the same ``Delivery.arm``) and then
leaves the treatment rows of the default split without a variant (``bandit_unassign``).
Each time the sender claims a batch of such rows (``sending.deliveries_claim``, inside its claim
transaction, before the policy and the recall fill) ``bandit_assign``:

1. reads what each copy of the default split has achieved so far on the campaign's goal —
   successes and trials per variant in one grouped query
   (``campaigns.selectors.goal_counts_by_variant``, the rule the results use);
2. draws ``DRAWS`` Thompson samples, one Beta(1 + successes, 1 + failures) per copy each,
   with a ``random.Random`` seeded by (campaign, allocation number), and gives each copy the
   share of draws it wins (Thompson sampling: Russo et al., "A Tutorial on Thompson
   Sampling", 2018, §3);
3. records the allocation (``BanditAllocation``) and assigns the batch's rows by those
   shares (largest remainders, rows in a seeded shuffle).

Never touched: holdout rows (``arm = holdout``: status ``holdout`` at planning, never
pending, so never claimed; they keep no variant), rows a copy condition personalised (their
rule wins), rows of fixed-split campaigns. Everything the sender checks afterwards (the one
policy evaluation per channel, opt-outs, quiet hours, caps) applies unchanged.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

from campaigns.models import (
    Arm,
    BanditAllocation,
    BanditGoal,
    Campaign,
    Delivery,
    DeliveryStatus,
    Journey,
    MessageTemplate,
    Variant,
    VariantMode,
)
from campaigns.selectors import REACHED, goal_counts, goal_counts_by_variant
from campaigns.services.variants import HASH_A, HASH_B, MOD, split_default

# Samples drawn per allocation: the share of each copy is its win rate over these.
DRAWS = 1000


def bandit_arms(campaign: Campaign, variants: list[Variant]) -> list[Variant]:
    """The copies the bandit chooses among: the default split (unconditional variants)."""
    return split_default(variants)


def bandit_unassign(*, campaign: Campaign) -> int:
    """After planning a bandit campaign: the holdout rows and the treatment rows of the
    default split carry no variant (the sender chooses one per batch). Pending rows only —
    rows already sent keep the copy they read."""
    if campaign.variant_mode != VariantMode.BANDIT:
        return 0
    arms = [v.pk for v in bandit_arms(campaign, list(campaign.variants.all()))]
    rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    holdout = rows.filter(arm=Arm.HOLDOUT, variant__isnull=False).update(variant=None)
    treated = rows.filter(
        arm=Arm.TREATMENT, status=DeliveryStatus.PENDING, variant_id__in=arms
    ).update(variant=None)
    return holdout + treated


def thompson_shares(
    stats: list[tuple[int, int]], *, rng: random.Random, draws: int = DRAWS
) -> list[float]:
    """Each arm's share of ``draws`` Thompson samples won. ``stats``: (successes, trials)
    per arm; arm k's sample is Beta(1 + s_k, 1 + t_k - s_k) (a uniform prior)."""
    wins = [0] * len(stats)
    params = [(1 + s, 1 + max(0, t - s)) for s, t in stats]
    for _ in range(draws):
        samples = [rng.betavariate(a, b) for a, b in params]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]


def _counts_for(n: int, shares: list[float]) -> list[int]:
    """``n`` rows split by ``shares`` (largest remainders: the counts add up to ``n``)."""
    exact = [n * s for s in shares]
    counts = [int(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda k: exact[k] - counts[k], reverse=True)
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    return counts


def bandit_assign(rows: list[Delivery]) -> list[Delivery]:
    """Choose the copy of the claimed rows of bandit campaigns that await one (treatment
    rows without a variant, or on a default-split copy after a profiling refusal). Updates
    the rows in memory (variant, template) and returns the changed ones for the caller to
    save; records one ``BanditAllocation`` per campaign in the batch."""
    campaign_ids = {r.campaign_id for r in rows if r.campaign_id}
    if not campaign_ids:
        return []
    campaigns = {
        c.pk: c
        for c in Campaign.unscoped.filter(pk__in=campaign_ids, variant_mode=VariantMode.BANDIT)
    }
    if not campaigns:
        return []
    by_campaign: dict[int, list[Variant]] = defaultdict(list)
    for variant in Variant.objects.filter(campaign_id__in=campaigns).select_related("template"):
        by_campaign[variant.campaign_id].append(variant)
    changed: list[Delivery] = []
    for campaign_id, campaign in campaigns.items():
        arms = bandit_arms(campaign, by_campaign[campaign_id])
        arm_ids = {v.pk for v in arms}
        waiting = [
            r
            for r in rows
            if r.campaign_id == campaign_id
            and r.arm == Arm.TREATMENT
            and (r.variant_id is None or r.variant_id in arm_ids)
        ]
        if not waiting or not arms:
            continue
        changed += _allocate(campaign, arms, waiting)
    return changed


def _allocate(campaign: Campaign, arms: list[Variant], rows: list[Delivery]) -> list[Delivery]:
    counts = goal_counts_by_variant(campaign=campaign, goal=campaign.bandit_goal)
    stats = [counts.get(v.pk, (0, 0)) for v in arms]
    number = BanditAllocation.unscoped.filter(campaign_id=campaign.pk).count() + 1
    # Seeded by the campaign and the allocation's number: a replay of the same history
    # allocates the same way (the simulation tests rely on it).
    seed = f"bandit:{campaign.pk}:{number}"
    rng = random.Random(seed)  # noqa: S311 - a traffic split, not a secret
    shares = thompson_shares(stats, rng=rng)
    assigned = _counts_for(len(rows), shares)
    order = sorted(rows, key=lambda r: r.pk)
    rng.shuffle(order)
    changed = []
    start = 0
    for variant, n in zip(arms, assigned, strict=True):
        for row in order[start : start + n]:
            if row.variant_id != variant.pk or row.template_id != variant.template_id:
                row.variant_id, row.template_id = variant.pk, variant.template_id
                Delivery.template.field.set_cached_value(row, variant.template)
                changed.append(row)
        start += n
    BanditAllocation.objects.for_org(campaign.org_id).create(
        org_id=campaign.org_id,
        campaign=campaign,
        goal=campaign.bandit_goal,
        batch_size=len(rows),
        seed=seed,
        arms=[
            {
                "variant": v.pk,
                "name": v.name,
                "successes": s,
                "trials": t,
                "share": round(share, 4),
                "assigned": n,
            }
            for v, (s, t), share, n in zip(arms, stats, shares, assigned, strict=True)
        ],
    )
    return changed


# -- journey send steps --------------------------------------------------------------------
# A journey send step with several copies (``variants``) and ``variant_mode = bandit`` uses
# the same sampler on the same goal rule, one member at a time: the step keeps its latest
# allocation until ``REALLOCATE_EVERY`` more of its messages have reached people (or
# ``REALLOCATE_AFTER`` has passed with new results), then records a new one from the results
# so far (``goal_counts`` by template over the step's rows). Each member takes a copy by a
# seeded draw of (allocation, member) against the allocation's shares, so a replay of the
# same history sends the same copies. The step's holdout (``holdout_pct``) is drawn first by
# its own hash and never reaches the sampler: no copy is chosen for it, nothing is sent.

REALLOCATE_EVERY = 20
REALLOCATE_AFTER = timedelta(hours=1)
# A hash of its own: the step holdout must not correlate with the journey's holdout
# (``journeys.in_holdout``), the copy draw or the untimed draw.
_STEP_HOLDOUT_A, _STEP_HOLDOUT_MOD = 2246822519, 1000033


def journey_step_copies(step: dict) -> list[str]:
    """The template keys a send step chooses among: its ``template`` then its ``variants``."""
    return [step["template"], *step.get("variants", [])]


def journey_step_in_holdout(*, journey_id: int, step_index: int, contact_id: int, pct: int) -> bool:
    """Whether a member is in a send step's holdout (stable per journey, step and person)."""
    salt = journey_id * 7919 + step_index
    return (contact_id * _STEP_HOLDOUT_A + salt) % _STEP_HOLDOUT_MOD % 100 < pct


def journey_step_rows(*, journey: Journey, step_index: int):
    """The step's outbox rows (every version of the journey: edits keep the index)."""
    return Delivery.objects.for_org(journey.org_id).filter(
        journey_id=journey.pk, journey_step=step_index
    )


def journey_step_choose(
    *,
    journey: Journey,
    step_index: int,
    step: dict,
    templates: dict[str, MessageTemplate],
    contact_id: int,
    now: datetime,
) -> tuple[MessageTemplate, BanditAllocation | None]:
    """The copy one treated member of a send step gets, and the allocation that chose it
    (None outside bandit mode). ``templates``: the step's copies by key
    (``journey_step_copies``), all present. Fixed mode: an even stable split. Bandit mode: a
    draw against the step's current allocation (recorded when it changes)."""
    keys = [k for k in journey_step_copies(step) if k in templates]
    if len(keys) == 1:
        return templates[keys[0]], None
    if step.get("variant_mode") != VariantMode.BANDIT:
        draw = (contact_id * HASH_A + journey.pk * HASH_B + step_index) % MOD % len(keys)
        return templates[keys[draw]], None
    allocation = journey_step_allocation(
        journey=journey, step_index=step_index, step=step, templates=templates, now=now
    )
    rng = random.Random(f"{allocation.seed}:{contact_id}")  # noqa: S311 - a traffic split
    u = rng.random()
    bound = 0.0
    for arm in allocation.arms:
        bound += arm["share"]
        if u < bound:
            return templates[arm["variant"]], allocation
    return templates[allocation.arms[-1]["variant"]], allocation


def journey_step_allocation(
    *,
    journey: Journey,
    step_index: int,
    step: dict,
    templates: dict[str, MessageTemplate],
    now: datetime,
) -> BanditAllocation:
    """The step's current allocation: the latest one while it still holds, else a new one
    drawn by ``thompson_shares`` from what each copy has achieved on the step's goal."""
    keys = [k for k in journey_step_copies(step) if k in templates]
    goal = step.get("bandit_goal") or BanditGoal.CLICK
    latest = (
        BanditAllocation.objects.for_org(journey.org_id)
        .filter(journey=journey, step_index=step_index)
        .order_by("-created_at", "-id")
        .first()
    )
    rows = journey_step_rows(journey=journey, step_index=step_index).filter(
        template_id__in=[templates[k].pk for k in keys]
    )
    reached = rows.filter(status__in=REACHED).count()
    if latest is not None and [a["variant"] for a in latest.arms] == keys and latest.goal == goal:
        seen = sum(a["trials"] for a in latest.arms)
        fresh = reached - seen < REALLOCATE_EVERY
        if fresh and (reached == seen or now - latest.created_at < REALLOCATE_AFTER):
            return latest
    by_template = goal_counts(
        org_id=journey.org_id, rows=rows, goal=goal, since=journey.created_at, by="template_id"
    )
    stats = [by_template.get(templates[k].pk, (0, 0)) for k in keys]
    number = (
        BanditAllocation.objects.for_org(journey.org_id)
        .filter(journey=journey, step_index=step_index)
        .count()
        + 1
    )
    seed = f"bandit:j{journey.pk}:{step_index}:{number}"
    shares = thompson_shares(stats, rng=random.Random(seed))  # noqa: S311 - a traffic split
    return BanditAllocation.objects.for_org(journey.org_id).create(
        org_id=journey.org_id,
        journey=journey,
        step_index=step_index,
        goal=goal,
        batch_size=0,
        seed=seed,
        arms=[
            {
                "variant": key,
                "name": templates[key].name,
                "successes": s,
                "trials": t,
                "share": round(share, 4),
            }
            for key, (s, t), share in zip(keys, stats, shares, strict=True)
        ],
    )
