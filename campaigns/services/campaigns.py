"""Templates and campaigns: creation rules, launch, stats."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import (
    ApprovalStatus,
    Arm,
    BanditAllocation,
    BanditGoal,
    Campaign,
    CampaignStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    MessageClass,
    MessageTemplate,
    Provider,
    ProviderAccount,
    SendTiming,
    TemplateAudience,
    Timing,
    Variant,
    VariantMode,
)
from campaigns.selectors import CONVERSION_EVENTS, REACHED, credited_ids, goal_counts_by_variant
from campaigns.services.bandit import bandit_unassign
from campaigns.services.mass_tags import wechat_tag_members_sync
from campaigns.services.placeholders import placeholders_of, template_placeholders_check
from campaigns.services.planning import campaign_plan
from campaigns.services.recall import RECALL_PLACEHOLDERS
from campaigns.services.sending import sms_account_default
from core.errors import Conflict, DomainError
from core.models import Organization
from core.tasks import enqueue
from crm.conditions import validate_condition
from crm.models import Event
from wechat.models import WeChatAccount, WeChatAccountKind

# Words that make copy promotional; a service message must never carry them.
MARKETING_WORDS = (
    "促销",
    "特价",
    "秒杀",
    "抢购",
    "红包",
    "限时",
    "折扣",
    "大促",
    "低至",
    "包邮",
    "优惠券",
    "领券",
    "满减",
    "免费领",
)
# Content Tencent Cloud refuses in marketing SMS templates: these follow-ups go through WeChat.
TENCENT_BANNED_CATEGORIES = {
    "live_promotion": gettext_lazy("直播推广"),
    "coupon_promotion": gettext_lazy("优惠券推广"),
    "user_recall": gettext_lazy("用户召回"),
    "oa_promotion": gettext_lazy("公众号推广"),
}


class PolicyViolation(DomainError):
    code = "policy_violation"


def _check_template_rules(
    *, channel: str, message_class: str, body: str, category: str, account
) -> None:
    if channel == Channel.WECHAT_TEMPLATE and message_class == MessageClass.MARKETING:
        # WeChat forbids marketing copy, coupons or red packets in template messages.
        raise PolicyViolation(
            _("公众号模板消息只能用于服务通知，营销内容请使用群发或短信"),
            code="marketing_not_allowed",
            fields={"message_class": [_("公众号模板消息只能用于服务通知")]},
        )
    if message_class == MessageClass.SERVICE:
        found = [w for w in MARKETING_WORDS if w in body]
        if found:
            raise PolicyViolation(
                _("服务通知不能包含营销内容"),
                code="marketing_copy_in_service",
                fields={
                    "body": [_("服务通知不能包含营销用语：%(words)s") % {"words": "、".join(found)}]
                },
            )
    if (
        channel == Channel.SMS
        and message_class == MessageClass.MARKETING
        and account is not None
        and account.provider == Provider.TENCENT
        and category in TENCENT_BANNED_CATEGORIES
    ):
        raise PolicyViolation(
            _("腾讯云短信不允许该类营销内容，请改用微信渠道"),
            code="use_wechat",
            fields={
                "content_category": [
                    _("腾讯云禁止%(category)s类营销短信，请通过微信触达")
                    % {"category": TENCENT_BANNED_CATEGORIES[category]}
                ]
            },
        )


@transaction.atomic
def template_create(
    *,
    org: Organization,
    name: str,
    channel: str,
    message_class: str,
    body: str,
    provider_template_id: str = "",
    param_names: list[str] | None = None,
    content_category: str = "",
    provider_account: ProviderAccount | None = None,
    key: str = "",
    audience: str = TemplateAudience.CUSTOMER,
) -> MessageTemplate:
    """Create a template. Platform rules are checked here (and again at every send)."""
    _check_template_rules(
        channel=channel,
        message_class=message_class,
        body=body,
        category=content_category,
        account=provider_account,
    )
    # Every placeholder is one the sender knows how to fill (or the template is refused).
    template_placeholders_check(body=body, audience=audience, param_names=param_names or [])
    if audience == TemplateAudience.STAFF and message_class != MessageClass.SERVICE:
        raise PolicyViolation(
            _("员工通知只能是服务通知"),
            code="staff_template_marketing",
            fields={"message_class": [_("员工通知只能是服务通知")]},
        )
    if channel == Channel.SMS and message_class == MessageClass.MARKETING:
        account = (
            provider_account
            or ProviderAccount.objects.for_org(org)
            .order_by("-is_default", "id")
            .exclude(provider=Provider.WECHAT)
            .first()
        )
        suffix = account.effective_optout_suffix if account else "拒收请回复R"
        if suffix not in body:
            body = f"{body} {suffix}"
    # The console backend has no provider review; real providers start "pending" until the
    # admin records the provider's approval.
    approved = provider_account is not None and provider_account.provider == Provider.CONSOLE
    if channel == Channel.SMS and provider_account is None:
        default = (
            ProviderAccount.objects.for_org(org)
            .exclude(provider=Provider.WECHAT)
            .order_by("-is_default", "id")
            .first()
        )
        approved = default is not None and default.provider == Provider.CONSOLE
    if key and MessageTemplate.objects.for_org(org).filter(key=key).exists():
        raise Conflict(_("模板标识已存在"), fields={"key": [_("模板标识已存在")]})
    return MessageTemplate.objects.for_org(org).create(
        org=org,
        name=name,
        channel=channel,
        message_class=message_class,
        body=body,
        provider_template_id=provider_template_id,
        param_names=param_names or [],
        content_category=content_category,
        provider_account=provider_account,
        key=key,
        audience=audience,
        approval_status=ApprovalStatus.APPROVED if approved else ApprovalStatus.PENDING,
    )


class WrongTemplateForSegment(PolicyViolation):
    code = "wrong_template"


def _check_variant_template(index: int, template: MessageTemplate) -> None:
    """A campaign goes to a segment: staff notices and service templates have no place in it."""
    if template.audience == TemplateAudience.STAFF:
        message = _("「%(name)s」是员工通知模板，不能发给客户") % {"name": template.name}
    elif template.message_class == MessageClass.SERVICE:
        message = _("「%(name)s」是服务通知模板；面向人群的活动属于营销，请选择营销模板") % {
            "name": template.name
        }
    else:
        return
    raise WrongTemplateForSegment(
        message, fields={"variants": {str(index): {"template": [message]}}}
    )


class UnfilledPlaceholder(PolicyViolation):
    code = "unfilled_placeholder"


def _check_campaign_fills(
    index: int, template: MessageTemplate, *, params: dict, link_url: str, recall: bool = False
):
    """A campaign fills ``{link}`` from its link_url, the recall placeholders from its source
    room (``recall``) and everything else but ``{nickname}`` (the person's, with a fallback)
    from its params: refuse what it cannot fill."""
    names = placeholders_of(template.body) + list(template.param_names)
    for name in dict.fromkeys(names):
        if name == "nickname":
            continue
        if name in RECALL_PLACEHOLDERS:
            if not recall:
                message = _("模板「%(template)s」的变量 {%(name)s} 需要选择来源直播间") % {
                    "template": template.name,
                    "name": name,
                }
                raise UnfilledPlaceholder(message, fields={"source_room": [message]})
            continue
        if name == "link":
            if not link_url:
                message = _("模板「%(name)s」含 {link}，请填写跟踪链接") % {"name": template.name}
                raise UnfilledPlaceholder(message, fields={"link_url": [message]})
            continue
        if not str(params.get(name, "")).strip():
            message = _("模板「%(template)s」的变量 {%(name)s} 未填写") % {
                "template": template.name,
                "name": name,
            }
            raise UnfilledPlaceholder(message, fields={"params": {name: [message]}})


def wechat_account_default(*, org: Organization, channel: str):
    """The account a WeChat campaign sends from when none is chosen (None: none active)."""

    kind = (
        WeChatAccountKind.MINI_PROGRAM
        if channel == Channel.MP_SUBSCRIBE
        else WeChatAccountKind.OFFICIAL
    )
    return (
        WeChatAccount.objects.for_org(org).filter(kind=kind, is_active=True).order_by("id").first()
    )


def _check_bandit(
    *, variant_mode: str, bandit_goal: str, variants: list[dict], channel: str, link_url: str
) -> None:
    """An adaptive split needs two copies to choose between and a goal it can observe."""
    if variant_mode != VariantMode.BANDIT:
        return
    if len([v for v in variants if not v.get("condition")]) < 2:
        message = _("自动优化至少需要两个不带条件的文案")
        raise DomainError(message, fields={"variant_mode": [message]})
    if bandit_goal not in BanditGoal.values:
        message = _("请选择优化目标")
        raise DomainError(message, fields={"bandit_goal": [message]})
    if bandit_goal == BanditGoal.CLICK and not link_url:
        # Clicks are counted on the tracked link: without one every copy scores zero.
        message = _("以点击为目标需要填写跟踪链接")
        raise DomainError(message, fields={"bandit_goal": [message]})
    if bandit_goal == BanditGoal.REPLY and channel != Channel.SMS:
        message = _("以回复为目标仅用于短信")
        raise DomainError(message, fields={"bandit_goal": [message]})


@transaction.atomic
def campaign_create(
    *,
    org: Organization,
    user=None,
    name: str,
    channel: str,
    variants: list[dict],
    segment=None,
    condition: dict | None = None,
    holdout_pct: int = 0,
    params: dict | None = None,
    link_url: str = "",
    scheduled_at=None,
    provider_account: ProviderAccount | None = None,
    wechat_account=None,
    wechat_tag_id: int | None = None,
    source_room=None,
    variant_mode: str = VariantMode.FIXED,
    bandit_goal: str = "",
    send_timing: str = SendTiming.FIXED,
    fallback_hour: int = 10,
    untimed_pct: int = 10,
) -> Campaign:
    """``variants``: ``[{"name", "template": MessageTemplate, "condition"?, "weight"?,
    "fallback_template"?}]``. ``wechat_tag_id`` (wechat_mass with an official account only):
    send by WeChat user tag. ``source_room``: a personal recall from that room — templates
    may use ``{product}``, ``{clip_url}``, ``{coupon_expiry}``, and a variant's
    ``fallback_template`` is the copy for people they cannot be filled for
    (campaigns.services.recall). ``variant_mode="bandit"`` with a ``bandit_goal``: the
    unconditional copies share traffic adaptively (campaigns.services.bandit).
    ``send_timing="best_hour"`` (智能节奏): each recipient at
    their own best hour, people without history at ``fallback_hour`` (Beijing; both moved
    into the hours the channel may send in: campaigns.services.send_time), except a random
    ``untimed_pct`` % sent at the campaign's hour to measure the timing."""

    if send_timing not in SendTiming.values:
        raise DomainError(_("未知的发送节奏"), fields={"send_timing": [_("未知的发送节奏")]})
    if not 0 <= fallback_hour <= 23:
        message = _("发送时刻应在 0–23 点之间")
        raise DomainError(message, fields={"fallback_hour": [message]})
    if not 0 <= untimed_pct <= 50:
        message = _("统一时刻对照比例应在 0–50 之间")
        raise DomainError(message, fields={"untimed_pct": [message]})

    if not variants:
        raise DomainError(_("至少需要一个文案"), fields={"variants": [_("至少需要一个文案")]})
    if wechat_tag_id is not None and (channel != Channel.WECHAT_MASS or wechat_account is None):
        raise DomainError(
            _("按标签群发仅用于公众号群发，且需选择公众号"),
            fields={"wechat_tag_id": [_("按标签群发仅用于公众号群发，且需选择公众号")]},
        )
    if condition:
        validate_condition(condition)
    if channel == Channel.WECHAT_TEMPLATE:
        # WeChat forbids marketing in template messages, and a send to a segment is marketing.
        raise PolicyViolation(
            _("面向人群的活动属于营销，公众号模板消息只能用于服务通知，请使用群发或短信"),
            code="marketing_not_allowed",
            fields={"channel": [_("面向人群的活动不能使用公众号模板消息")]},
        )
    if source_room is not None and source_room.org_id != org.pk:
        raise DomainError(_("直播间不存在"), fields={"source_room": [_("直播间不存在")]})
    for i, variant in enumerate(variants):
        if variant.get("fallback_template") is not None and source_room is None:
            message = _("兜底模板只用于来自直播间的个性化召回")
            raise DomainError(
                message, fields={"variants": {str(i): {"fallback_template": [message]}}}
            )
        for template in filter(None, (variant["template"], variant.get("fallback_template"))):
            if template.channel != channel:
                raise DomainError(
                    _("模板渠道与活动渠道不一致"),
                    fields={"variants": {str(i): [_("模板渠道不一致")]}},
                )
            _check_variant_template(i, template)
            _check_template_rules(
                channel=channel,
                message_class=MessageClass.MARKETING,
                body=template.body,
                category=template.content_category,
                account=provider_account,
            )
            _check_campaign_fills(
                i,
                template,
                params=params or {},
                link_url=link_url,
                recall=source_room is not None,
            )
        if variant.get("condition"):
            validate_condition(variant["condition"])
    _check_bandit(
        variant_mode=variant_mode,
        bandit_goal=bandit_goal,
        variants=variants,
        channel=channel,
        link_url=link_url,
    )
    if channel == Channel.SMS and provider_account is None:
        provider_account = sms_account_default(org)
    if channel != Channel.SMS and wechat_account is None:
        # As SMS takes the default provider account: the organisation's oldest active
        # official account (or mini-program for subscription messages), so the workspace
        # builder need not ask (its users need not be the admins who configure accounts).
        wechat_account = wechat_account_default(org=org, channel=channel)
    if channel != Channel.SMS and wechat_account is None:
        raise DomainError(
            _("微信渠道需要选择公众号或小程序"),
            fields={"wechat_account": [_("请选择公众号或小程序")]},
        )
    campaign = Campaign.objects.for_org(org).create(
        org=org,
        wechat_tag_id=wechat_tag_id,
        name=name,
        channel=channel,
        # A campaign is aimed at a segment (or everyone): marketing, whatever its templates say.
        message_class=MessageClass.MARKETING,
        provider_account=provider_account,
        wechat_account=wechat_account,
        segment=segment,
        condition=condition,
        holdout_pct=holdout_pct,
        variant_mode=variant_mode,
        bandit_goal=bandit_goal if variant_mode == VariantMode.BANDIT else "",
        params=params or {},
        link_url=link_url,
        source_room=source_room,
        scheduled_at=scheduled_at,
        send_timing=send_timing,
        fallback_hour=fallback_hour,
        untimed_pct=untimed_pct,
        created_by=user,
    )
    Variant.objects.bulk_create(
        [
            Variant(
                campaign=campaign,
                name=v.get("name") or chr(ord("A") + i),
                template=v["template"],
                fallback_template=v.get("fallback_template"),
                condition=v.get("condition"),
                weight=v.get("weight") or 1,
                position=i,
            )
            for i, v in enumerate(variants)
        ]
    )
    return campaign


def campaign_launch(*, campaign: Campaign) -> dict:
    """Plan (idempotent) and start sending. Relaunching adds rows only for people without
    one and never re-sends: the unique (campaign, contact, channel) key guarantees it."""

    unapproved = [
        template.name
        for v in campaign.variants.select_related("template", "fallback_template")
        for template in (v.template, v.fallback_template)
        if template is not None and template.approval_status != ApprovalStatus.APPROVED
    ]
    if unapproved:
        raise PolicyViolation(
            _("模板尚未通过服务商审核"),
            code="template_not_approved",
            fields={"variants": unapproved},
        )
    if campaign.wechat_tag_id:
        wechat_tag_members_sync(campaign=campaign)  # network I/O: before the transaction
    with transaction.atomic():
        locked = Campaign.objects.for_org(campaign.org_id).select_for_update().get(pk=campaign.pk)
        inserted = campaign_plan(campaign=locked)
        # Adaptive campaigns: the sender chooses each treatment row's copy per batch.
        bandit_unassign(campaign=locked)
        now = timezone.now()
        # A relaunch that added rows reopens a finished campaign until they are final.
        if inserted or locked.status != CampaignStatus.DONE:
            locked.status = CampaignStatus.SENDING
            locked.finished_at = None
        locked.planned_at = locked.planned_at or now
        locked.launched_at = locked.launched_at or now
        locked.save(
            update_fields=["status", "finished_at", "planned_at", "launched_at", "updated_at"]
        )
        enqueue("campaigns.send_deliveries", None, locked.pk)
    campaign.refresh_from_db()
    return {"planned": inserted}


# The uplift is shown only when both arms hold at least this many people. Below it the 95 %
# interval of a difference of two conversion rates is wider than any campaign effect worth
# reporting (±8 points at a 10 % rate with 100 per arm) and the normal approximations behind
# it are rough; the report shows a sample-size warning instead of "0.0 (0.0 ~ 0.0)".
UPLIFT_MIN_ARM = 100


def uplift_itt(*, x1: int, n1: int, x0: int, n0: int) -> dict:
    """Intent-to-treat uplift: conversion rate of everyone assigned to the treatment arm
    (``x1`` of ``n1``) minus that of the holdout (``x0`` of ``n0``), with the 95 % Newcombe
    hybrid-score interval of statsmodels' ``confint_proportions_2indep`` (good coverage at
    the small rates campaigns see, unlike the Wald interval). Rates, uplift and interval
    are None unless both arms hold ``UPLIFT_MIN_ARM`` people (``enough``)."""
    result = {
        "method": "itt_newcombe",
        "treatment_n": n1,
        "holdout_n": n0,
        "treatment_converted": x1,
        "holdout_converted": x0,
        "min_arm": UPLIFT_MIN_ARM,
        "enough": n1 >= UPLIFT_MIN_ARM and n0 >= UPLIFT_MIN_ARM,
        "treatment_rate": None,
        "holdout_rate": None,
        "uplift": None,
        "ci95": None,
    }
    if not result["enough"]:
        return result
    # local import: statsmodels takes ~1-5 s to import; only the A/B report needs it
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
    result.update(
        {
            "treatment_rate": round(x1 / n1, 4),
            "holdout_rate": round(x0 / n0, 4),
            "uplift": round(x1 / n1 - x0 / n0, 4),
            "ci95": [round(float(low), 4), round(float(high), 4)],
        }
    )
    return result


def conversions_credited(*, campaign: Campaign, variant_id: int | None = None) -> int:
    """How many of the campaign's deliveries a conversion is credited to (last touch).

    Each conversion (an ``order`` or ``coupon.claim`` event) is credited to ONE delivery of
    the organisation: the one the person clicked last within ``CAMPAIGNS_CONVERSION_DAYS``
    before converting; for a person who clicked none, the one sent to them last within that
    window. A delivery with several conversions counts once. Deliveries of other campaigns
    and journeys compete for the same conversion, so campaigns never double-count a sale.
    """
    if not campaign.launched_at:
        return 0
    rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign, status__in=REACHED)
    if variant_id is not None:
        rows = rows.filter(variant_id=variant_id)
    return rows.filter(pk__in=credited_ids(campaign=campaign)).count()


def campaign_stats(*, campaign: Campaign) -> dict:
    """Funnel, attributed conversions and uplift.

    ``converted`` counts the campaign's deliveries credited with a conversion
    (``conversions_credited``). The uplift compares like with like instead, by intent to
    treat (``campaign_uplift``).
    """
    rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    by_status = dict(rows.values_list("status").annotate(n=Count("pk")))
    by_reason = dict(
        rows.filter(status=DeliveryStatus.SUPPRESSED).values_list("reason").annotate(n=Count("pk"))
    )
    reached = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    agg = rows.aggregate(
        planned=Count("pk"),
        deferred=Count("pk", filter=Q(deferred=True)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
    )
    result = {
        "status": campaign.status,
        "finished_at": campaign.finished_at,
        "planned": agg["planned"],
        "holdout": by_status.get(DeliveryStatus.HOLDOUT, 0),
        "suppressed": sum(by_reason.values()),
        "suppressed_by_reason": by_reason,
        "deferred": agg["deferred"],
        "pending": by_status.get(DeliveryStatus.PENDING, 0),
        "sending": by_status.get(DeliveryStatus.SENDING, 0),
        "sent": sum(by_status.get(s, 0) for s in reached),
        "delivered": by_status.get(DeliveryStatus.DELIVERED, 0),
        "failed": by_status.get(DeliveryStatus.FAILED, 0),
        "unknown": by_status.get(DeliveryStatus.UNKNOWN, 0),
        "clicked": agg["clicked"],
        "converted": 0,
        "uplift": uplift_itt(x1=0, n1=0, x0=0, n0=0),
    }
    result["timing"] = None
    if campaign.launched_at:
        result["converted"] = conversions_credited(campaign=campaign)
        result["uplift"] = campaign_uplift(campaign=campaign, rows=rows)
        if campaign.send_timing == SendTiming.BEST_HOUR:
            result["timing"] = campaign_timing_uplift(campaign=campaign, rows=rows)
    result["variants"] = campaign_variant_stats(campaign=campaign, rows=rows)
    return result


def campaign_variant_stats(*, campaign: Campaign, rows=None) -> list[dict]:
    """Per copy (variant): sent, delivered, clicked, credited conversions, and the click and
    conversion rates over people reached — rates only once a copy reached ``UPLIFT_MIN_ARM``
    people (``enough``); below that a rate difference between copies is noise."""
    if rows is None:
        rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    reached = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    counts = {
        r["variant_id"]: r
        for r in rows.values("variant_id").annotate(
            planned=Count("pk"),
            sent=Count("pk", filter=Q(status__in=reached)),
            delivered=Count("pk", filter=Q(status=DeliveryStatus.DELIVERED)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        )
    }
    # Adaptive campaigns: each copy's successes on the goal and its share in the latest
    # allocation (the history is campaigns.selectors.bandit_allocations).
    goal_counts, shares = {}, {}
    if campaign.variant_mode == VariantMode.BANDIT:
        goal_counts = goal_counts_by_variant(campaign=campaign, goal=campaign.bandit_goal)
        latest = (
            BanditAllocation.objects.for_org(campaign.org_id)
            .filter(campaign=campaign)
            .order_by("-created_at", "-id")
            .first()
        )
        shares = {arm["variant"]: arm["share"] for arm in (latest.arms if latest else [])}
    out = []
    for variant in campaign.variants.select_related("template"):
        c = counts.get(variant.pk, {})
        sent = c.get("sent", 0)
        converted = (
            conversions_credited(campaign=campaign, variant_id=variant.pk)
            if campaign.launched_at and sent
            else 0
        )
        enough = sent >= UPLIFT_MIN_ARM
        out.append(
            {
                "id": variant.pk,
                "name": variant.name,
                "template": variant.template.name,
                "planned": c.get("planned", 0),
                "sent": sent,
                "delivered": c.get("delivered", 0),
                "clicked": c.get("clicked", 0),
                "converted": converted,
                "min_sent": UPLIFT_MIN_ARM,
                "enough": enough,
                "click_rate": c.get("clicked", 0) / sent if enough else None,
                "conversion_rate": converted / sent if enough else None,
                "goal_successes": goal_counts.get(variant.pk, (0, 0))[0],
                "share": shares.get(variant.pk),
            }
        )
    return out


def campaign_uplift(*, campaign: Campaign, rows=None) -> dict:
    """The uplift by intent to treat. Both arms are everyone randomised at planning
    (``Delivery.arm``), whatever happened at send — a row suppressed, failed or unknown at
    send stays in the treatment arm, exactly as every holdout row stays in the holdout — and
    both count a person as converted on any conversion event in the same window,
    ``[launched_at, launched_at + CAMPAIGNS_CONVERSION_DAYS)``. What happened at send is
    reported per arm (``at_send``): the holdout is never sent, so only its size shows."""

    rows = (
        rows
        if rows is not None
        else Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    )
    start = campaign.launched_at
    end = start + timedelta(days=settings.CAMPAIGNS_CONVERSION_DAYS)
    converted = Event.objects.for_org(campaign.org_id).filter(
        type__in=CONVERSION_EVENTS, occurred_at__gte=start, occurred_at__lt=end
    )
    arms = rows.aggregate(
        n1=Count("pk", filter=Q(arm=Arm.TREATMENT)),
        n0=Count("pk", filter=Q(arm=Arm.HOLDOUT)),
        x1=Count(
            "pk",
            filter=Q(arm=Arm.TREATMENT, contact_id__in=converted.values("contact_id")),
        ),
        x0=Count(
            "pk",
            filter=Q(arm=Arm.HOLDOUT, contact_id__in=converted.values("contact_id")),
        ),
    )
    treated = rows.filter(arm=Arm.TREATMENT)
    at_send = dict(treated.values_list("status").annotate(n=Count("pk")))
    suppressed = dict(
        treated.filter(status=DeliveryStatus.SUPPRESSED)
        .values_list("reason")
        .annotate(n=Count("pk"))
    )
    result = uplift_itt(x1=arms["x1"], n1=arms["n1"], x0=arms["x0"], n0=arms["n0"])
    result.update(
        {
            "window_start": start,
            "window_end": end,
            "at_send": {
                "treatment": {"by_status": at_send, "suppressed_by_reason": suppressed},
                "holdout": {"by_status": {DeliveryStatus.HOLDOUT: arms["n0"]}},
            },
        }
    )
    return result


def campaign_timing_uplift(*, campaign: Campaign, rows=None) -> dict:
    """智能节奏's uplift: the goal rate (any conversion event in the same window as
    ``campaign_uplift``) of the treatment rows sent at each person's own hour against the
    stable random share sent untimed at the campaign's hour (``Delivery.timing``), by intent
    to treat: a row counts in its timing whatever happened at send."""

    rows = (
        rows
        if rows is not None
        else Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign)
    )
    start = campaign.launched_at
    end = start + timedelta(days=settings.CAMPAIGNS_CONVERSION_DAYS)
    converters = (
        Event.objects.for_org(campaign.org_id)
        .filter(type__in=CONVERSION_EVENTS, occurred_at__gte=start, occurred_at__lt=end)
        .values("contact_id")
    )
    arms = rows.aggregate(
        n1=Count("pk", filter=Q(timing=Timing.TIMED)),
        n0=Count("pk", filter=Q(timing=Timing.UNTIMED)),
        x1=Count("pk", filter=Q(timing=Timing.TIMED, contact_id__in=converters)),
        x0=Count("pk", filter=Q(timing=Timing.UNTIMED, contact_id__in=converters)),
    )
    result = uplift_itt(x1=arms["x1"], n1=arms["n1"], x0=arms["x0"], n0=arms["n0"])
    result["method"] = "itt_newcombe_timed_vs_untimed"
    return result
