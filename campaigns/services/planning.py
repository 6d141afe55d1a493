"""Planning: the whole audience becomes outbox rows in ONE set-based ``INSERT … SELECT``.

Per recipient the statement resolves the address (phone or openid, taken encrypted with its
keyed hash straight from ``crm_contactidentity``), the variant (``campaigns.services.variants``:
first matching condition unless the person refused profiling, else the default A/B split), the suppression reason
(the set form of ``policy.decide``'s rules: erased, no address, no consent, opted out,
frequency cap) and the holdout draw among the eligible. An anti-join on the unique
(campaign, contact, channel) key makes re-planning and relaunch no-ops for people who
already have a row. Nothing is sent here; send time re-checks everything.
"""

# Identifiers come from model metadata and constants; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import (
    Arm,
    Campaign,
    Channel,
    Delivery,
    DeliveryStatus,
    MarketingSendCount,
    MessageClass,
    SmsOptOut,
    SuppressionReason,
    Variant,
)
from campaigns.services.mass_tags import tag_member_contact_ids
from campaigns.services.policy import (
    CAMPAIGN,
    CONSENT_PURPOSE,
    cap_periods,
    message_class_for,
    policy_for,
)
from campaigns.services.send_time import PlanTiming
from campaigns.services.variants import HASH_A as _HASH_A
from campaigns.services.variants import HASH_B as _HASH_B
from campaigns.services.variants import MOD as _MOD
from campaigns.services.variants import variant_sql
from crm.conditions import contacts_matching
from crm.models import Consent, Contact, ContactIdentity
from crm.selectors import live_contacts, segment_contacts


def _dt(value):
    """Datetimes as the backend stores them (SQLite compares text: the ORM's format must
    match, or raw-inserted rows sort wrongly against ORM filters)."""
    return connection.ops.adapt_datetimefield_value(value)


def audience_queryset(campaign: Campaign) -> QuerySet:
    """The campaign's audience: its saved segment, its own condition, or everyone — narrowed
    to the WeChat tag's members known to us for a mass send by tag."""

    if campaign.segment_id:
        qs = segment_contacts(campaign.segment)
    elif campaign.condition:
        qs = contacts_matching(campaign.org, campaign.condition)
    else:
        qs = live_contacts(campaign.org_id)
    if campaign.wechat_tag_id and campaign.wechat_account_id:
        qs = qs.filter(pk__in=tag_member_contact_ids(campaign))  # the tag's known members
    return qs


def _subquery(qs: QuerySet) -> tuple[str, list]:
    sql, params = qs.order_by().values("id").query.sql_with_params()
    return sql, list(params)


def campaign_plan(*, campaign: Campaign) -> int:
    """Write the campaign's outbox rows (idempotent). Returns the number of rows inserted.

    One statement: audience ⋈ address ⋈ consent ⋈ opt-out ⋈ frequency-cap counters, with the variant,
    the suppression reason and the holdout draw computed per row; people who already have a
    row are skipped by an anti-join. The caller holds the campaign row lock (launch), so two
    plans of one campaign never interleave; the unique (campaign, contact, channel) key is
    the backstop. (A plain INSERT … SELECT: ``ON CONFLICT DO NOTHING``'s speculative insertion
    cost 14 s more per million rows.)
    """

    variants = list(campaign.variants.select_related("template"))
    if not variants:
        raise ValueError("campaign without variants")
    now = timezone.now()
    policy = policy_for(campaign.org_id)
    account = campaign.provider_account
    # A campaign is aimed at a segment: marketing, whatever its templates or its own row say.
    message_class = message_class_for(template=variants[0].template, origin=CAMPAIGN)
    marketing = message_class == MessageClass.MARKETING
    audience = audience_queryset(campaign)
    audience_sql, audience_params = _subquery(audience)
    variant_case, variant_params, variant_joins, variant_join_params = variant_sql(
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
        # The frequency cap's counters for today and this week (Beijing calendar).
        counts = MarketingSendCount._meta.db_table
        day, week = cap_periods(now)
        joins.append(
            f"LEFT JOIN {counts} fd ON fd.org_id = %s AND fd.contact_id = c.id "
            f"AND fd.period = %s LEFT JOIN {counts} fw ON fw.org_id = %s "
            f"AND fw.contact_id = c.id AND fw.period = %s"
        )
        join_params += [campaign.org_id, day, campaign.org_id, week]
        reasons.append("WHEN fd.count >= %s OR fw.count >= %s THEN %s")
        reason_params += [policy.cap_per_day, policy.cap_per_week, SuppressionReason.FREQUENCY_CAP]
    reason_sql = "CASE " + " ".join(reasons) + " ELSE '' END"

    holdout_sql = f"((x.contact_id * {_HASH_B} + %s) %% {_MOD}) %% 100 < %s"
    holdout_params = [campaign.pk * _HASH_A % _MOD, campaign.holdout_pct]
    due_at = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else now
    # 智能节奏: each treatment row's due_at at its recipient's own hour (send_time).
    timing = PlanTiming(
        campaign=campaign,
        audience=audience,
        now=now,
        start_at=due_at,
        excluded_sql=f"(x.reason <> '' OR {holdout_sql})",
        excluded_params=holdout_params,
    )

    inner = (
        f"SELECT c.id AS contact_id, i.value_encrypted AS to_encrypted, "
        f"i.value_hash AS to_hash, {variant_case} AS variant_id, {reason_sql} AS reason, "
        f"{timing.column_sql} "
        f"FROM {Contact._meta.db_table} c {' '.join(joins)} {variant_joins} {timing.join_sql} "
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
    status_sql = f"CASE WHEN x.reason <> '' THEN %s WHEN {holdout_sql} THEN %s ELSE %s END"
    status_params = [
        DeliveryStatus.SUPPRESSED,
        campaign.pk * _HASH_A % _MOD,
        campaign.holdout_pct,
        DeliveryStatus.HOLDOUT,
        DeliveryStatus.PENDING,
    ]
    # The arm: randomised are the people eligible at planning; the suppressed are not.
    arm_sql = f"CASE WHEN x.reason <> '' THEN '' WHEN {holdout_sql} THEN %s ELSE %s END"
    arm_params = [campaign.pk * _HASH_A % _MOD, campaign.holdout_pct, Arm.HOLDOUT, Arm.TREATMENT]
    columns = (
        "org_id, created_at, updated_at, campaign_id, contact_id, channel, message_class, "
        "template_id, variant_id, account_id, wechat_account_id, to_encrypted, to_hash, app_id, "
        "params, status, arm, timing, reason, due_at, deferred, attempts, provider_message_id, "
        "batch_key, error"
    )
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} ({columns}) {timing.with_sql}"
        f"SELECT %s, %s, %s, %s, x.contact_id, %s, %s, v.template_id, x.variant_id, %s, %s, "
        f"COALESCE(x.to_encrypted, ''), COALESCE(x.to_hash, ''), %s, %s, "
        f"{status_sql}, {arm_sql}, {timing.timing_sql}, x.reason, {timing.due_sql}, %s, 0, "
        "'', '', '' "
        f"FROM ({inner}) x JOIN {Variant._meta.db_table} v ON v.id = x.variant_id"
    )
    # Parameters follow the placeholders' order in the SQL text.
    params = [
        *timing.with_params,
        campaign.org_id,
        _dt(now),
        _dt(now),
        campaign.pk,
        campaign.channel,
        message_class,
        account.pk if account else None,
        campaign.wechat_account_id,
        app_id,
        "{}",
        *status_params,
        *arm_params,
        *timing.timing_params,
        *timing.due_params,
        False,
        *inner_params,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.rowcount
    return inserted
