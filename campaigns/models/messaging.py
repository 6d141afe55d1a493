"""Templates, campaigns, outbox deliveries, journeys, opt-outs (campaigns issue).

The outbox (``Delivery``) is the heart: planning writes one row per recipient before
anything is sent, workers claim rows and move them through
``pending → sending → sent | failed | unknown``; a row never goes back to ``pending`` from
``sending`` (a crash there is reconciled from receipts or left ``unknown`` for review).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import BaseModel, TenantModel

__all__ = [
    "MessageClass",
    "TemplateAudience",
    "Channel",
    "Provider",
    "ApprovalStatus",
    "ProviderAccount",
    "MessagingPolicy",
    "MessageTemplate",
    "CampaignStatus",
    "SendTiming",
    "Campaign",
    "Variant",
    "VariantMode",
    "BanditGoal",
    "BanditAllocation",
    "DeliveryStatus",
    "SuppressionReason",
    "Arm",
    "Timing",
    "Delivery",
    "MarketingSendCount",
    "SmsOptOut",
    "SmsReply",
    "ConsoleSms",
    "ShortLink",
    "Journey",
    "MembershipState",
    "JourneyMembership",
    "JourneyStepLog",
    "new_short_code",
]


class MessageClass(models.TextChoices):
    SERVICE = "service", _("服务通知")
    MARKETING = "marketing", _("营销")


class TemplateAudience(models.TextChoices):
    """Who a template is written for. Staff notices (a hot lead for its owner) name other
    people's leads: the policy never lets one reach a customer."""

    CUSTOMER = "customer", _("客户")
    STAFF = "staff", _("员工")


class Channel(models.TextChoices):
    SMS = "sms", _("短信")
    WECHAT_TEMPLATE = "wechat_template", _("公众号模板消息")
    WECHAT_CUSTOMER = "wechat_customer", _("公众号客服消息")
    WECHAT_MASS = "wechat_mass", _("公众号群发")
    MP_SUBSCRIBE = "mp_subscribe", _("小程序订阅消息")


class Provider(models.TextChoices):
    CONSOLE = "console", _("控制台（开发）")
    TENCENT = "tencent", _("腾讯云短信")
    ALIYUN = "aliyun", _("阿里云短信")
    WECHAT = "wechat", _("微信")


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("审核中")
    APPROVED = "approved", _("已通过")
    REJECTED = "rejected", _("已驳回")


# The opt-out suffix each SMS provider requires on marketing texts (docs/campaigns.md, "Policy").
DEFAULT_OPTOUT_SUFFIX = {
    Provider.CONSOLE: "拒收请回复R",
    Provider.TENCENT: "拒收请回复R",
    Provider.ALIYUN: "回T退订",
}


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


class ProviderAccount(TenantModel):
    """One sending account at one provider. The token bucket is keyed by this row, so every
    worker shares one budget per account (providers rate-limit per account, not per worker)."""

    provider = models.CharField(_("服务商"), max_length=16, choices=Provider.choices)
    name = models.CharField(_("名称"), max_length=64)
    sign_name = models.CharField(_("短信签名"), max_length=32, blank=True)
    app_id = models.CharField(_("应用ID"), max_length=64, blank=True)  # Tencent SmsSdkAppId
    access_key_id = models.CharField(_("AccessKey ID"), max_length=128, blank=True)
    access_key_secret = models.CharField(_("AccessKey Secret"), max_length=256, blank=True)
    # Empty = the provider's public endpoint; tests and the offline demo point it at a stub.
    endpoint = models.CharField(_("接入点"), max_length=200, blank=True)
    qps = models.PositiveIntegerField(_("每秒限额"), default=50)
    optout_suffix = models.CharField(_("退订提示"), max_length=32, blank=True)
    is_default = models.BooleanField(_("默认短信账号"), default=False)
    # Receipts and replies posted to /hooks/sms/<provider>/… must carry this token.
    webhook_token = models.CharField(_("回调令牌"), max_length=64, default=new_webhook_token)

    class Meta:
        verbose_name = _("发送账号")
        verbose_name_plural = _("发送账号")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    @property
    def effective_optout_suffix(self) -> str:
        return self.optout_suffix or DEFAULT_OPTOUT_SUFFIX.get(self.provider, "拒收请回复R")


class MessagingPolicy(TenantModel):
    """Organisation-wide rules for marketing messages: quiet hours and frequency caps."""

    quiet_start_hour = models.PositiveSmallIntegerField(_("允许发送开始（时）"), default=8)
    quiet_end_hour = models.PositiveSmallIntegerField(_("允许发送结束（时）"), default=21)
    cap_per_day = models.PositiveSmallIntegerField(_("每人每天营销上限"), default=1)
    cap_per_week = models.PositiveSmallIntegerField(_("每人每周营销上限"), default=3)

    class Meta:
        verbose_name = _("触达策略")
        verbose_name_plural = _("触达策略")
        constraints = [models.UniqueConstraint(fields=["org"], name="uniq_policy_per_org")]


class MessageTemplate(TenantModel):
    """A provider-approved template: ``body`` with ``{variables}``; ``param_names`` maps the
    variables, in order, onto the provider template's positional parameters."""

    name = models.CharField(_("名称"), max_length=64)
    channel = models.CharField(_("渠道"), max_length=20, choices=Channel.choices)
    message_class = models.CharField(_("消息类型"), max_length=12, choices=MessageClass.choices)
    audience = models.CharField(
        _("接收人"),
        max_length=10,
        choices=TemplateAudience.choices,
        default="customer",
        db_default="customer",
    )
    body = models.TextField(_("内容"), max_length=2000)
    provider_template_id = models.CharField(_("服务商模板ID"), max_length=64, blank=True)
    param_names = models.JSONField(_("参数顺序"), default=list, blank=True)
    approval_status = models.CharField(
        _("审核状态"), max_length=12, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    # Content categories providers ban in marketing SMS (Tencent: live-stream promotion,
    # coupon promotion, user recall, official-account promotion).
    content_category = models.CharField(_("内容类别"), max_length=32, blank=True)
    provider_account = models.ForeignKey(
        ProviderAccount,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("发送账号"),
    )
    key = models.SlugField(_("标识"), max_length=64, blank=True)  # for service sends by key

    class Meta:
        verbose_name = _("消息模板")
        verbose_name_plural = _("消息模板")
        constraints = [
            models.UniqueConstraint(
                fields=["org", "key"], condition=~models.Q(key=""), name="uniq_template_key"
            )
        ]

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    PLANNED = "planned", _("已规划")
    SENDING = "sending", _("发送中")
    DONE = "done", _("已完成")


class VariantMode(models.TextChoices):
    FIXED = "fixed", _("固定比例")
    BANDIT = "bandit", _("自动优化")


class BanditGoal(models.TextChoices):
    """What an adaptive split optimises; counted by ``campaigns.selectors.
    goal_counts_by_variant`` with the same rules as the campaign's results."""

    CLICK = "click", _("点击")
    CLAIM = "claim", _("领券")
    REDEMPTION = "redemption", _("核销")
    REPLY = "reply", _("回复")


class SendTiming(models.TextChoices):
    FIXED = "fixed", _("统一时间")
    BEST_HOUR = "best_hour", _("智能节奏")


class Campaign(TenantModel):
    """Audience (a saved segment or a condition) → channel → variants → schedule."""

    name = models.CharField(_("名称"), max_length=100)
    channel = models.CharField(_("渠道"), max_length=20, choices=Channel.choices)
    message_class = models.CharField(_("消息类型"), max_length=12, choices=MessageClass.choices)
    provider_account = models.ForeignKey(
        ProviderAccount, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("账号")
    )
    wechat_account = models.ForeignKey(
        "wechat.WeChatAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("公众号/小程序"),
    )
    segment = models.ForeignKey(
        "crm.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("人群"),
    )
    condition = models.JSONField(_("人群条件"), null=True, blank=True)
    # wechat_mass only: send to a WeChat user tag (message/mass/sendall by tag_id).
    wechat_tag_id = models.PositiveIntegerField(_("公众号标签ID"), null=True, blank=True)
    holdout_pct = models.PositiveSmallIntegerField(_("对照组比例%"), default=0)
    # ``bandit``: the default split's copy of each treatment row is chosen when the row is
    # claimed, by Thompson sampling on ``bandit_goal`` (campaigns.services.bandit); the
    # holdout is drawn at planning as for ``fixed`` and never touched.
    variant_mode = models.CharField(
        _("文案分配"),
        max_length=8,
        choices=VariantMode.choices,
        default=VariantMode.FIXED,
        db_default=VariantMode.FIXED,
    )
    bandit_goal = models.CharField(
        _("优化目标"), max_length=12, choices=BanditGoal.choices, blank=True, default=""
    )
    params = models.JSONField(_("模板变量"), default=dict, blank=True)
    link_url = models.URLField(_("跟踪链接"), blank=True)
    # Personal recall: each recipient's message features what they did in this room
    # ({product}, {clip_url}, {coupon_expiry}; campaigns.services.recall).
    source_room = models.ForeignKey(
        "livecommerce.Room",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("来源直播间"),
    )
    scheduled_at = models.DateTimeField(_("计划发送时间"), null=True, blank=True)
    # 智能节奏: each recipient at their own best hour (campaigns.services.send_time), the
    # people without history at ``fallback_hour`` (Beijing time).
    send_timing = models.CharField(
        _("发送节奏"),
        max_length=10,
        choices=SendTiming.choices,
        default=SendTiming.FIXED,
        db_default=SendTiming.FIXED,
    )
    fallback_hour = models.PositiveSmallIntegerField(
        _("无历史时的发送时刻"), default=10, db_default=10
    )
    # The randomised share of a 智能节奏 campaign's treatment arm sent untimed, to measure
    # the timing's uplift (send_time.untimed_sql).
    untimed_pct = models.PositiveSmallIntegerField(
        _("统一时刻对照比例%"), default=10, db_default=10
    )
    status = models.CharField(
        _("状态"), max_length=12, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    planned_at = models.DateTimeField(_("规划时间"), null=True, blank=True)
    launched_at = models.DateTimeField(_("启动时间"), null=True, blank=True)
    # Set when every outbox row of the launched campaign is final (see FINAL_STATUSES).
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("营销活动")
        verbose_name_plural = _("营销活动")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Variant(BaseModel):
    """One copy of a campaign. The first variant whose ``condition`` matches a person wins;
    people matched by none are split over the unconditional variants by ``weight`` with a
    stable hash of (campaign, contact) — the same person always gets the same copy."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("名称"), max_length=32)
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT)
    # Recall campaigns: the copy for a recipient whose engagement in the source room cannot
    # fill ``template``'s recall placeholders (no engagement, or no unredeemed coupon for
    # {coupon_expiry}). Without one such a recipient is suppressed ``missing_param``.
    fallback_template = models.ForeignKey(
        MessageTemplate,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("兜底模板"),
    )
    condition = models.JSONField(_("条件"), null=True, blank=True)
    weight = models.PositiveSmallIntegerField(_("权重"), default=1)
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)

    class Meta:
        ordering = ["position", "id"]


class BanditAllocation(TenantModel):
    """One allocation of an adaptive (bandit) campaign or journey send step: what each copy
    had achieved when traffic was about to be assigned, the share Thompson sampling gave it,
    and how many rows it got. ``arms``: ``[{"variant", "name", "successes", "trials",
    "share", "assigned"}, ...]`` in variant order (for a journey step ``variant`` is the
    copy's template key and there is no ``assigned``: the rows it chose name it in
    ``Delivery.allocation``, and the results count them).
    Exactly one of ``campaign`` and ``journey`` is set."""

    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="allocations",
        verbose_name=_("活动"),
    )
    journey = models.ForeignKey(
        "campaigns.Journey",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="allocations",
        verbose_name=_("旅程"),
    )
    step_index = models.PositiveSmallIntegerField(_("旅程步骤"), null=True, blank=True)
    goal = models.CharField(_("优化目标"), max_length=12, choices=BanditGoal.choices)
    arms = models.JSONField(_("各文案"), default=list)
    batch_size = models.PositiveIntegerField(_("本批人数"), default=0)
    seed = models.CharField(_("随机种子"), max_length=64)

    class Meta:
        verbose_name = _("自动优化分配")
        verbose_name_plural = _("自动优化分配")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(campaign__isnull=False, journey__isnull=True)
                | models.Q(campaign__isnull=True, journey__isnull=False, step_index__isnull=False),
                name="allocation_campaign_xor_journey_step",
            )
        ]
        indexes = [
            models.Index(
                fields=["journey", "step_index", "created_at"],
                condition=models.Q(journey__isnull=False),
                name="allocation_journey_step",
            )
        ]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    DELIVERED = "delivered", _("已送达")
    FAILED = "failed", _("失败")
    UNKNOWN = "unknown", _("状态未知")
    SUPPRESSED = "suppressed", _("已拦截")
    HOLDOUT = "holdout", _("对照组")


FINAL_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.HOLDOUT,
)


class SuppressionReason(models.TextChoices):
    NO_ADDRESS = "no_address", _("无可用联系方式")
    NO_CONSENT = "no_consent", _("未授权营销")
    OPTED_OUT = "opted_out", _("已退订")
    FREQUENCY_CAP = "frequency_cap", _("超过频次上限")
    CHANNEL_RULE = "channel_rule", _("渠道规则禁止")
    TEMPLATE_NOT_APPROVED = "template_not_approved", _("模板未审核通过")
    OUTSIDE_WINDOW = "outside_window", _("超出48小时客服窗口")
    WINDOW_QUOTA = "window_quota", _("客服消息条数已满")
    MASS_QUOTA = "mass_quota", _("本月群发次数已满")
    NO_SUBSCRIPTION = "no_subscription", _("无可用订阅授权")
    UNSUBSCRIBED = "unsubscribed", _("已取消关注")
    ERASED = "erased", _("个人信息已删除")
    PROFILING_REFUSED = "profiling_refused", _("拒绝个性化")
    STAFF_ONLY = "staff_only", _("员工通知不发给客户")
    MISSING_PARAM = "missing_param", _("模板变量未填")


class Arm(models.TextChoices):
    TREATMENT = "treatment", _("实验组")
    HOLDOUT = "holdout", _("对照组")


class Timing(models.TextChoices):
    """How a treatment row of a 智能节奏 campaign was timed: at the person's best hour, or
    (a stable random share) untimed at the campaign's hour, to measure the timing's uplift."""

    TIMED = "timed", _("智能时刻")
    UNTIMED = "untimed", _("统一时刻（对照）")


class Delivery(TenantModel):
    """One message to one person on one channel: the outbox row, the dedup key and the log."""

    # Planning inserts a million rows at once: every index costs, so FK columns already led
    # by a composite index (org → uniq key, campaign → uniq recipient, contact → cap) or never
    # filtered on carry none of their own.
    # Likewise no database-level FK checks (one lookup per row per constraint, queued until
    # commit): the planner takes every referenced id from rows it has just read, and Django
    # applies on_delete itself. Measured on 1,000,000 rows: 56 s with them, 19 s without.
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    org = models.ForeignKey(
        "core.Organization",
        on_delete=models.CASCADE,
        verbose_name=_("组织"),
        db_index=False,
        db_constraint=False,
    )
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(
        "crm.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    channel = models.CharField(_("渠道"), max_length=20, choices=Channel.choices)
    message_class = models.CharField(_("消息类型"), max_length=12, choices=MessageClass.choices)
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    variant = models.ForeignKey(
        Variant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        db_constraint=False,
    )
    account = models.ForeignKey(
        ProviderAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    wechat_account = models.ForeignKey(
        "wechat.WeChatAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # Deliveries without a campaign (service SMS, journey steps) dedup on this key.
    key = models.CharField(_("幂等键"), max_length=128, null=True, blank=True)
    to_encrypted = models.TextField(_("收件地址（加密）"), blank=True)
    to_hash = models.CharField(_("收件地址哈希"), max_length=64, blank=True)
    app_id = models.CharField(_("应用"), max_length=64, blank=True)
    params = models.JSONField(_("变量"), default=dict, blank=True)
    # The text the person reads, written when the row is handed to the sender (empty until
    # then: recall and nickname placeholders are filled at send time).
    rendered = models.TextField(_("发送内容"), blank=True, default="", db_default="")
    status = models.CharField(
        _("状态"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    reason = models.CharField(
        _("拦截原因"), max_length=24, choices=SuppressionReason.choices, blank=True
    )
    # Campaign rows only: the arm the person was randomised into at planning ("treatment" or
    # "holdout"); empty for people suppressed at planning (never randomised) and for journey
    # and service rows. The uplift counts arms by this, whatever happened at send.
    arm = models.CharField(
        _("分组"), max_length=10, choices=Arm.choices, blank=True, default="", db_default=""
    )
    # 智能节奏 campaigns' treatment rows only (``Timing``); empty elsewhere.
    timing = models.CharField(
        _("发送时刻"), max_length=8, choices=Timing.choices, blank=True, default="", db_default=""
    )
    # Journey send steps only: the journey and the step the row was sent by, so a step's
    # copies, holdout and timed/untimed split are counted from its rows
    # (campaigns.selectors.journey_step_results). No index of their own: the report reads
    # them through the partial index below.
    journey = models.ForeignKey(
        "campaigns.Journey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    journey_step = models.PositiveSmallIntegerField(_("旅程步骤"), null=True, blank=True)
    # Journey bandit steps only: the allocation whose shares chose this row's copy, so the
    # results count what was sent under each allocation exactly (no guessing from times:
    # two members can reach the step across an allocation's creation). DO_NOTHING and no
    # index: allocations go only with their journey or campaign, and a delete must not scan
    # the outbox for them; nothing reads a row by allocation outside its journey's step.
    allocation = models.ForeignKey(
        BanditAllocation,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    due_at = models.DateTimeField(_("计划发送"), null=True, blank=True)
    deferred = models.BooleanField(_("曾被延后"), default=False)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    claimed_at = models.DateTimeField(_("领取时间"), null=True, blank=True)
    # Set just before this row's provider request leaves (after the rate limiter): a worker
    # lost while the row is in ``sending`` without it never reached any provider, so the
    # row goes back to ``pending`` instead of ``unknown`` (see sending.deliveries_reconcile_stale).
    handed_at = models.DateTimeField(_("交给服务商时间"), null=True, blank=True)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("送达时间"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("点击时间"), null=True, blank=True)
    converted_at = models.DateTimeField(_("转化时间"), null=True, blank=True)
    provider_message_id = models.CharField(_("服务商消息ID"), max_length=64, blank=True)
    # One provider request's key (SessionContext / OutId): receipts name it, so rows whose
    # request timed out can still be reconciled.
    batch_key = models.CharField(_("批次"), max_length=32, blank=True)
    error = models.CharField(_("错误"), max_length=255, blank=True)
    # When an ``unknown`` row's status was last asked of the provider (status polling).
    provider_checked_at = models.DateTimeField(_("服务商核对时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("发送记录")
        verbose_name_plural = _("发送记录")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact", "channel"], name="uniq_delivery_per_recipient"
            ),
            models.UniqueConstraint(
                fields=["org", "key"],
                condition=models.Q(key__isnull=False),
                name="uniq_delivery_key",
            ),
        ]
        # Partial indexes: only the rows each query looks for (due pending rows, sent rows for
        # caps, claimed rows for receipts), so planning a million rows stays cheap.
        indexes = [
            models.Index(
                fields=["due_at"], condition=models.Q(status="pending"), name="delivery_due"
            ),
            models.Index(
                fields=["contact", "message_class", "sent_at"],
                condition=models.Q(sent_at__isnull=False),
                name="delivery_cap",
            ),
            models.Index(
                fields=["batch_key"], condition=~models.Q(batch_key=""), name="delivery_batch"
            ),
            models.Index(
                fields=["status"],
                condition=models.Q(status="sending"),
                name="delivery_sending",
            ),
            models.Index(
                fields=["journey", "journey_step"],
                condition=models.Q(journey__isnull=False),
                name="delivery_journey_step",
            ),
        ]

    @property
    def dedup_key(self) -> str:
        """The key the provider sees (SessionContext / OutId / clientmsgid)."""
        return f"d{self.pk}"


class MarketingSendCount(TenantModel):
    """Marketing messages claimed for one person in one period (a Beijing day ``2026-11-23``
    or an ISO week ``2026-W48``): the frequency cap's counter. Claimed with one atomic
    ``INSERT … ON CONFLICT DO UPDATE … WHERE count < cap`` inside the sender's claim
    transaction, so concurrent campaigns can never push a person past the cap."""

    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    period = models.CharField(_("周期"), max_length=10)
    count = models.PositiveIntegerField(_("条数"), default=0)

    class Meta:
        verbose_name = _("营销触达计数")
        verbose_name_plural = _("营销触达计数")
        constraints = [
            models.UniqueConstraint(
                fields=["org", "contact", "period"], name="uniq_send_count_period"
            )
        ]


class SmsOptOut(TenantModel):
    """A phone refused marketing SMS under one signature (uplink TD/T/N/R/退订)."""

    phone_hash = models.CharField(max_length=64)
    sign_name = models.CharField(_("短信签名"), max_length=32)
    text = models.CharField(_("回复内容"), max_length=140, blank=True)
    provider = models.CharField(_("服务商"), max_length=16, choices=Provider.choices)

    class Meta:
        verbose_name = _("短信退订")
        verbose_name_plural = _("短信退订")
        constraints = [
            models.UniqueConstraint(
                fields=["org", "phone_hash", "sign_name"], name="uniq_optout_phone_sign"
            )
        ]


class SmsReply(TenantModel):
    """Every uplink SMS, kept for the record (opt-outs and anything else people answer)."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    phone_hash = models.CharField(max_length=64)
    sign_name = models.CharField(max_length=32, blank=True)
    text = models.CharField(max_length=500)
    is_optout = models.BooleanField(default=False)


class ConsoleSms(TenantModel):
    """What the development console backend "sent": the demo's visible inbox."""

    delivery = models.ForeignKey(
        Delivery, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("投递")
    )
    phone_masked = models.CharField(_("手机号"), max_length=20)
    phone_hash = models.CharField(max_length=64)
    text = models.TextField(_("内容"))
    message_id = models.CharField(_("消息ID"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("开发短信收件箱")
        verbose_name_plural = _("开发短信收件箱")


def new_short_code() -> str:
    return secrets.token_urlsafe(6)


class ShortLink(TenantModel):
    code = models.CharField(max_length=16, unique=True, default=new_short_code)
    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="short_link")
    target_url = models.URLField(max_length=500)
    clicks = models.PositiveIntegerField(default=0)


class Journey(TenantModel):
    """Trigger (event type + condition) → steps. ``steps`` is a list of dicts:
    ``{"wait": {"seconds": n}}``, ``{"wait": {"before_room_start": seconds}}``,
    ``{"branch": {"condition": {...}, "else_goto": i}}`` / ``{"if_not_event": ...}``,
    ``{"send": {"template": key, "channel": ...}}``, ``{"tag": "..."}``, ``{"assign_owner": {}}``,
    ``{"create_task": {...}}``, ``{"notify_owner": {...}}``."""

    key = models.SlugField(_("标识"), max_length=64)
    name = models.CharField(_("名称"), max_length=100)
    trigger_event = models.CharField(_("触发事件"), max_length=32)
    trigger_condition = models.JSONField(_("触发条件"), null=True, blank=True)
    steps = models.JSONField(_("步骤"), default=list)
    holdout_pct = models.PositiveSmallIntegerField(_("对照组比例%"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)
    # Bumped by every change of ``steps``; members keep the version they entered with.
    version = models.PositiveIntegerField(_("版本"), default=1)

    class Meta:
        verbose_name = _("自动化旅程")
        verbose_name_plural = _("自动化旅程")
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="uniq_journey_key")]

    def __str__(self) -> str:
        return self.name


class MembershipState(models.TextChoices):
    ACTIVE = "active", _("进行中")
    DONE = "done", _("已完成")
    HOLDOUT = "holdout", _("对照组")
    EXITED = "exited", _("已退出")


class JourneyMembership(TenantModel):
    """One person's trip through a journey for one trigger (e.g. one reservation)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)  # one membership per journey per trigger key
    context = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=10, choices=MembershipState.choices, default=MembershipState.ACTIVE
    )
    step_index = models.PositiveSmallIntegerField(default=0)
    # The journey version whose steps this member walks (see JourneyVersion).
    version = models.PositiveIntegerField(default=1)
    due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "key"], name="uniq_membership_key")
        ]
        indexes = [models.Index(fields=["state", "due_at"], name="membership_due")]


class JourneyStepLog(TenantModel):
    """What each step did for each member: the per-step counts of the journey list."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="step_logs")
    membership = models.ForeignKey(JourneyMembership, on_delete=models.CASCADE)
    step_index = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "step_index"], name="uniq_step_log_per_member"
            )
        ]
