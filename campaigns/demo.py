"""Campaign demo data: the SMS console backend, policy, templates and the shipped journeys.

Idempotent: keyed rows are created once; running it again changes nothing.
"""

from __future__ import annotations

from campaigns.models import (
    ApprovalStatus,
    Channel,
    Journey,
    MessageClass,
    MessageTemplate,
    MessagingPolicy,
    Provider,
    ProviderAccount,
    TemplateAudience,
)

TEMPLATES = [
    # key, name, channel, class, body, param names
    ("otp", "验证码", Channel.SMS, MessageClass.SERVICE, "验证码{code}，5分钟内有效。", ["code"]),
    (
        "reservation_reminder",
        "开播提醒",
        Channel.SMS,
        MessageClass.SERVICE,
        "您预约的直播「{room}」将于{start}开始，点击观看：{link}",
        ["room", "start", "link"],
    ),
    (
        "replay_link",
        "回放提醒",
        Channel.SMS,
        MessageClass.MARKETING,
        "您预约的直播「{room}」已结束，精彩回放：{link}",
        ["room", "link"],
    ),
    (
        "coupon_expiry",
        "券到期提醒",
        Channel.SMS,
        MessageClass.SERVICE,
        "您领取的「{name}」将于{valid_until}到期，请及时使用。",
        ["name", "valid_until"],
    ),
    (
        "promo_price",
        "价格敏感文案",
        Channel.SMS,
        MessageClass.MARKETING,
        "{nickname}您好，今晚直播间全场低至5折，限时秒杀：{link}",
        ["nickname", "link"],
    ),
    (
        "promo_feature",
        "功能卖点文案",
        Channel.SMS,
        MessageClass.MARKETING,
        "{nickname}您好，新品精华今晚首发，主播现场讲解成分与功效：{link}",
        ["nickname", "link"],
    ),
    # WeChat marketing copies for the builder's official-account channels: a mass send is
    # one message to every follower (no {nickname}); a customer-service message goes to each
    # follower inside WeChat's 48-hour window.
    (
        "mass_new_arrival",
        "上新群发",
        Channel.WECHAT_MASS,
        MessageClass.MARKETING,
        "今晚8点新品首发，主播现场讲解成分与功效，点击预约：{link}",
        ["link"],
    ),
    (
        "customer_new_arrival",
        "上新客服消息",
        Channel.WECHAT_CUSTOMER,
        MessageClass.MARKETING,
        "{nickname}您好，您关注的新品今晚8点开播，直播间专享券已备好：{link}",
        ["nickname", "link"],
    ),
    # Service messages to staff: the hot-lead notice to the lead's owner.
    (
        "owner_hot_lead_sms",
        "热线索通知（短信）",
        Channel.SMS,
        MessageClass.SERVICE,
        "线索{lead}已达到{grade}级，请尽快跟进：{link}",
        ["lead", "grade", "link"],
    ),
    (
        "owner_hot_lead_wechat",
        "热线索通知（公众号）",
        Channel.WECHAT_TEMPLATE,
        MessageClass.SERVICE,
        "{title}：线索{lead}已达到{grade}级",
        ["title", "lead", "grade"],
    ),
]

JOURNEYS = [
    {
        "key": "reservation_reminder",
        "name": "开播前10分钟提醒",
        "trigger_event": "reservation.due",
        "steps": [
            {"type": "wait_before_room_start", "seconds": 600},
            {"type": "send", "template": "reservation_reminder"},
        ],
    },
    {
        "key": "replay_link",
        "name": "预约未到场发送回放",
        "trigger_event": "room.reserve",
        "holdout_pct": 10,
        "steps": [
            {"type": "wait_room_end", "seconds": 1800},
            {"type": "exit_if_event", "event": "room.join", "same_room": True},
            {"type": "send", "template": "replay_link"},
        ],
    },
    {
        "key": "coupon_expiry",
        "name": "优惠券到期前24小时提醒",
        "trigger_event": "coupon.claim",
        "steps": [
            {"type": "wait_before_coupon_expiry", "seconds": 86400},
            {"type": "exit_if_event", "event": "coupon.redeem"},
            {"type": "send", "template": "coupon_expiry"},
        ],
    },
    {
        "key": "hot_lead",
        "name": "高意向线索通知负责人",
        "trigger_event": "grade.changed",
        "trigger_condition": {"field": "grade", "op": "eq", "value": "A"},
        "steps": [
            {"type": "assign_owner"},
            {
                "type": "notify_owner",
                "title": "高意向线索，请尽快跟进",
                "sms_template": "owner_hot_lead_sms",
                "wechat_template": "owner_hot_lead_wechat",
            },
        ],
    },
]


def seed_org(org) -> ProviderAccount:
    account = ProviderAccount.objects.for_org(org).filter(provider=Provider.CONSOLE).first()
    if account is None:
        account = ProviderAccount.objects.for_org(org).create(
            org=org,
            provider=Provider.CONSOLE,
            name="短信控制台（开发）",
            sign_name="千面",
            is_default=True,
            qps=50,
        )
    MessagingPolicy.objects.for_org(org).get_or_create(org=org)
    for key, name, channel, message_class, body, params in TEMPLATES:
        if (
            channel == Channel.SMS
            and message_class == MessageClass.MARKETING
            and account.effective_optout_suffix not in body
        ):
            body = f"{body} {account.effective_optout_suffix}"
        MessageTemplate.objects.for_org(org).get_or_create(
            org=org,
            key=key,
            defaults={
                "name": name,
                "channel": channel,
                "message_class": message_class,
                # The hot-lead notices name a lead for its owner: staff only.
                "audience": (
                    TemplateAudience.STAFF
                    if key.startswith("owner_")
                    else TemplateAudience.CUSTOMER
                ),
                "body": body,
                "param_names": params,
                "provider_template_id": f"TPL-{key.upper()}" if channel != Channel.SMS else "",
                "provider_account": account if channel == Channel.SMS else None,
                "approval_status": ApprovalStatus.APPROVED,
            },
        )
    for spec in JOURNEYS:
        Journey.objects.for_org(org).get_or_create(
            org=org,
            key=spec["key"],
            defaults={k: v for k, v in spec.items() if k != "key"},
        )
    return account


def seed(ctx) -> None:
    seed_org(ctx.org)
    seed_org(ctx.other_org)
