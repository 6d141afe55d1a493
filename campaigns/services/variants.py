"""千人千面: which copy a person gets — one rule, written once in SQL (planning) and once in
Python (send time), both built from the helpers below.

The rule:
1. a person who refused ``profiling`` is never chosen by a variant condition (conditions read
   their profile: income level, tags, score…) — they are treated as matching no condition;
2. otherwise the first variant whose condition matches the person wins;
3. everyone left gets the campaign's **default** copy: a stable weighted A/B split over the
   unconditional variants (a hash of (campaign, contact)), or the last variant when every
   variant has a condition. A/B splits are not personalisation: profiling does not change
   who lands in A or B.

Planning applies it to the whole audience; the sender re-applies step 1 to the rows it claims,
so a person who refuses profiling after planning still gets the default copy.
"""

# Identifiers come from model metadata and constants; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict

from campaigns.models import Campaign, Delivery, Variant
from crm.conditions import contacts_matching
from crm.models import Consent

# Multiplicative hashing of ids: stable, cheap in SQL on both SQLite and PostgreSQL.
HASH_A, HASH_B, MOD = 2654435761, 40503, 1000003
PROFILING = "profiling"


def split_default(variants: list[Variant]) -> list[Variant]:
    """The variants of the default copy: the unconditional ones, else the last one."""
    return [v for v in variants if not v.condition] or variants[-1:]


def variant_default(*, campaign_id: int, contact_id: int, variants: list[Variant]) -> Variant:
    """The default copy of one person (the Python form of ``_split_sql``)."""
    split = split_default(variants)
    total = sum(max(1, v.weight) for v in split)
    draw = ((contact_id * HASH_A + campaign_id * HASH_B) % MOD) % total
    bound = 0
    for variant in split[:-1]:
        bound += max(1, variant.weight)
        if draw < bound:
            return variant
    return split[-1]


def variant_sql(campaign: Campaign, variants: list[Variant]) -> tuple[str, list, str, list]:
    """(CASE choosing the variant id per contact alias ``c``, its params, the LEFT JOINs it
    needs — conditional variants' audiences and profiling refusals — and their params)."""
    whens, params, joins, join_params = [], [], [], []
    conditional = [v for v in variants if v.condition]
    if conditional:
        joins.append(
            f"LEFT JOIN {Consent._meta.db_table} pr ON pr.contact_id = c.id "
            f"AND pr.purpose = %s AND pr.granted = %s"
        )
        join_params += [PROFILING, False]
    for i, variant in enumerate(variants):
        if variant.condition:
            qs = contacts_matching(campaign.org, variant.condition).order_by().values("id")
            sql, p = qs.query.sql_with_params()
            joins.append(f"LEFT JOIN ({sql}) vc{i} ON vc{i}.id = c.id")
            join_params += list(p)
            whens.append(f"WHEN pr.id IS NULL AND vc{i}.id IS NOT NULL THEN %s")
            params.append(variant.pk)
    split = split_default(variants)
    total = sum(max(1, v.weight) for v in split)
    bound = 0
    for variant in split[:-1]:
        bound += max(1, variant.weight)
        whens.append(f"WHEN ((c.id * {HASH_A} + %s) %% {MOD}) %% %s < %s THEN %s")
        params += [campaign.pk * HASH_B, total, bound, variant.pk]
    sql = "CASE " + " ".join(whens) + " ELSE %s END" if whens else "%s"
    params.append(split[-1].pk)
    return sql, params, " ".join(joins), join_params


def recheck_profiling(rows: list[Delivery]) -> list[Delivery]:
    """Send-time half of rule 1: rows planned with a conditional (personalised) variant for a
    person who has since refused profiling switch to that person's default copy. Updates the
    rows in memory (variant, template) and returns the changed ones for the caller to save."""
    campaign_ids = {r.campaign_id for r in rows if r.campaign_id and r.variant_id}
    if not campaign_ids:
        return []
    by_campaign: dict[int, list[Variant]] = defaultdict(list)
    for variant in Variant.objects.filter(campaign_id__in=campaign_ids).select_related("template"):
        by_campaign[variant.campaign_id].append(variant)
    conditional = {v.pk for vs in by_campaign.values() for v in vs if v.condition}
    personalised = [r for r in rows if r.variant_id in conditional and r.contact_id]
    if not personalised:
        return []
    refused = set(
        Consent.unscoped.filter(
            contact_id__in={r.contact_id for r in personalised}, purpose=PROFILING, granted=False
        ).values_list("contact_id", flat=True)
    )
    changed = []
    for row in personalised:
        if row.contact_id in refused:
            variant = variant_default(
                campaign_id=row.campaign_id,
                contact_id=row.contact_id,
                variants=by_campaign[row.campaign_id],
            )
            row.variant_id, row.template_id = variant.pk, variant.template_id
            Delivery.template.field.set_cached_value(row, variant.template)
            changed.append(row)
    return changed
