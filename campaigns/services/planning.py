"""Planning: the whole audience becomes outbox rows in ONE set-based ``INSERT … SELECT``.

Per recipient the statement resolves the address (phone or openid, taken encrypted with its
keyed hash straight from ``crm_contactidentity``), the variant (first matching condition,
else a stable weighted A/B split on a hash of (campaign, contact)), the suppression reason
(the set form of ``policy.decide``'s rules: erased, no address, no consent, opted out,
frequency cap) and the holdout draw among the eligible. An anti-join on the unique
(campaign, contact, channel) key makes re-planning and relaunch no-ops for people who
already have a row. Nothing is sent here; send time re-checks everything.
"""

# Identifiers come from model metadata and constants; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import (
    Campaign,
    Channel,
    Delivery,
    DeliveryStatus,
    MessageClass,
    SmsOptOut,
    SuppressionReason,
    Variant,
)
from campaigns.services.policy import CONSENT_PURPOSE, SENT_STATUSES, policy_for

# Multiplicative hashing of ids: stable, cheap in SQL on both SQLite and PostgreSQL.
_HASH_A, _HASH_B, _MOD = 2654435761, 40503, 1000003


def _dt(value):
    """Datetimes as the backend stores them (SQLite compares text: the ORM's format must
    match, or raw-inserted rows sort wrongly against ORM filters)."""
    return connection.ops.adapt_datetimefield_value(value)


def audience_queryset(campaign: Campaign) -> QuerySet:
    """The campaign's audience: its saved segment, its own condition, or everyone — narrowed
    to the WeChat tag's members known to us for a mass send by tag."""
    from crm.conditions import contacts_matching
    from crm.selectors import live_contacts, segment_contacts

    if campaign.segment_id:
        qs = segment_contacts(campaign.segment)
    elif campaign.condition:
        qs = contacts_matching(campaign.org, campaign.condition)
    else:
        qs = live_contacts(campaign.org_id)
    if campaign.wechat_tag_id and campaign.wechat_account_id:
        from campaigns.services.mass_tags import tag_member_contact_ids

        qs = qs.filter(pk__in=tag_member_contact_ids(campaign))  # the tag's known members
    return qs


def _subquery(qs: QuerySet) -> tuple[str, list]:
    sql, params = qs.order_by().values("id").query.sql_with_params()
    return sql, list(params)


def _variant_sql(campaign: Campaign, variants: list[Variant]) -> tuple[str, list, str, list]:
    """(CASE choosing the variant id per contact alias ``c``, its params, the LEFT JOINs of
    the conditional variants' audiences, their params)."""
    from crm.conditions import contacts_matching

    whens, params, joins, join_params = [], [], [], []
    for i, variant in enumerate(variants):
        if variant.condition:
            sql, p = _subquery(contacts_matching(campaign.org, variant.condition))
            joins.append(f"LEFT JOIN ({sql}) vc{i} ON vc{i}.id = c.id")
            join_params += p
            whens.append(f"WHEN vc{i}.id IS NOT NULL THEN %s")
            params.append(variant.pk)
    split = [v for v in variants if not v.condition] or variants[-1:]
    total = sum(max(1, v.weight) for v in split)
    bound = 0
    for variant in split[:-1]:
        bound += max(1, variant.weight)
        whens.append(f"WHEN ((c.id * {_HASH_A} + %s) %% {_MOD}) %% %s < %s THEN %s")
        params += [campaign.pk * _HASH_B, total, bound, variant.pk]
    sql = "CASE " + " ".join(whens) + " ELSE %s END" if whens else "%s"
    params.append(split[-1].pk)
    return sql, params, " ".join(joins), join_params


def plan_campaign(*, campaign: Campaign) -> int:
    """Write the campaign's outbox rows (idempotent). Returns the number of rows inserted.

    One statement: audience ⋈ address ⋈ consent ⋈ opt-out ⋈ recent sends, with the variant,
    the suppression reason and the holdout draw computed per row; people who already have a
    row are skipped by an anti-join. The caller holds the campaign row lock (launch), so two
    plans of one campaign never interleave; the unique (campaign, contact, channel) key is
    the backstop. (A plain INSERT … SELECT: ``ON CONFLICT DO NOTHING``'s speculative insertion
    cost 14 s more per million rows.)
    """
    from crm.models import Consent, Contact, ContactIdentity

    variants = list(campaign.variants.select_related("template"))
    if not variants:
        raise ValueError("campaign without variants")
    now = timezone.now()
    policy = policy_for(campaign.org_id)
    account = campaign.provider_account
    marketing = campaign.message_class == MessageClass.MARKETING
    audience_sql, audience_params = _subquery(audience_queryset(campaign))
    variant_sql, variant_params, variant_joins, variant_join_params = _variant_sql(
        campaign, variants
    )
    if campaign.channel == Channel.SMS:
        kind, app_id = "phone", ""
    else:
        wechat = campaign.wechat_account
        kind, app_id = "openid", (wechat.appid if wechat else "")

    identity = ContactIdentity._meta.db_table
    # One address per contact (the oldest), chosen set-based.
    joins = [
        f"LEFT JOIN (SELECT contact_id, MIN(id) AS id FROM {identity} WHERE org_id = %s "
        f"AND kind = %s AND app_id = %s GROUP BY contact_id) ip ON ip.contact_id = c.id "
        f"LEFT JOIN {identity} i ON i.id = ip.id"
    ]
    join_params: list = [campaign.org_id, kind, app_id]
    # Suppression reasons, in the order policy.decide applies them.
    reasons = ["WHEN c.erased_at IS NOT NULL THEN %s", "WHEN i.value_hash IS NULL THEN %s"]
    reason_params: list = [SuppressionReason.ERASED, SuppressionReason.NO_ADDRESS]
    if marketing:
        if campaign.channel == Channel.SMS:
            joins.append(
                f"LEFT JOIN {SmsOptOut._meta.db_table} o ON o.org_id = %s "
                f"AND o.phone_hash = i.value_hash AND o.sign_name = %s"
            )
            join_params += [campaign.org_id, account.sign_name if account else ""]
            reasons.append("WHEN o.id IS NOT NULL THEN %s")
            reason_params.append(SuppressionReason.OPTED_OUT)
        joins.append(
            f"LEFT JOIN {Consent._meta.db_table} k ON k.contact_id = c.id "
            f"AND k.purpose = %s AND k.granted = %s"
        )
        join_params += [CONSENT_PURPOSE[campaign.channel], True]
        reasons.append("WHEN k.id IS NULL THEN %s")
        reason_params.append(SuppressionReason.NO_CONSENT)
        statuses = ", ".join(["%s"] * len(SENT_STATUSES))
        joins.append(
            f"LEFT JOIN (SELECT s.contact_id, "
            f"SUM(CASE WHEN s.sent_at >= %s THEN 1 ELSE 0 END) AS day, COUNT(*) AS week "
            f"FROM {Delivery._meta.db_table} s WHERE s.org_id = %s AND s.message_class = %s "
            f"AND s.status IN ({statuses}) AND s.sent_at >= %s "
            f"GROUP BY s.contact_id) f ON f.contact_id = c.id"
        )
        join_params += [
            _dt(now - timedelta(days=1)),
            campaign.org_id,
            MessageClass.MARKETING,
            *SENT_STATUSES,
            _dt(now - timedelta(days=7)),
        ]
        reasons.append("WHEN f.day >= %s OR f.week >= %s THEN %s")
        reason_params += [policy.cap_per_day, policy.cap_per_week, SuppressionReason.FREQUENCY_CAP]
    reason_sql = "CASE " + " ".join(reasons) + " ELSE '' END"

    inner = (
        f"SELECT c.id AS contact_id, i.value_encrypted AS to_encrypted, "
        f"i.value_hash AS to_hash, {variant_sql} AS variant_id, {reason_sql} AS reason "
        f"FROM {Contact._meta.db_table} c {' '.join(joins)} {variant_joins} "
        f"WHERE c.org_id = %s AND c.id IN ({audience_sql}) AND NOT EXISTS (SELECT 1 FROM "
        f"{Delivery._meta.db_table} d WHERE d.campaign_id = %s AND d.contact_id = c.id "
        f"AND d.channel = %s)"
    )
    inner_params = [
        *variant_params,
        *reason_params,
        *join_params,
        *variant_join_params,
        campaign.org_id,
        *audience_params,
        campaign.pk,
        campaign.channel,
    ]
    holdout_sql = f"((x.contact_id * {_HASH_B} + %s) %% {_MOD}) %% 100 < %s"
    status_sql = f"CASE WHEN x.reason <> '' THEN %s WHEN {holdout_sql} THEN %s ELSE %s END"
    status_params = [
        DeliveryStatus.SUPPRESSED,
        campaign.pk * _HASH_A % _MOD,
        campaign.holdout_pct,
        DeliveryStatus.HOLDOUT,
        DeliveryStatus.PENDING,
    ]
    columns = (
        "org_id, created_at, updated_at, campaign_id, contact_id, channel, message_class, "
        "template_id, variant_id, account_id, wechat_account_id, to_encrypted, to_hash, app_id, "
        "params, status, reason, due_at, deferred, attempts, provider_message_id, batch_key, error"
    )
    due_at = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else now
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} ({columns}) "
        f"SELECT %s, %s, %s, %s, x.contact_id, %s, %s, v.template_id, x.variant_id, %s, %s, "
        f"COALESCE(x.to_encrypted, ''), COALESCE(x.to_hash, ''), %s, %s, "
        f"{status_sql}, x.reason, %s, %s, 0, '', '', '' "
        f"FROM ({inner}) x JOIN {Variant._meta.db_table} v ON v.id = x.variant_id"
    )
    # Parameters follow the placeholders' order in the SQL text.
    params = [
        campaign.org_id,
        _dt(now),
        _dt(now),
        campaign.pk,
        campaign.channel,
        campaign.message_class,
        account.pk if account else None,
        campaign.wechat_account_id,
        app_id,
        "{}",
        *status_params,
        _dt(due_at),
        False,
        *inner_params,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.rowcount
    return inserted
