"""Contacts (leads), their identities and the append-only event log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TenantManager, TenantModel


class Gender(models.TextChoices):
    FEMALE = "female", _("女")
    MALE = "male", _("男")
    UNKNOWN = "unknown", _("未知")


class IncomeLevel(models.TextChoices):
    LOW = "low", _("低")
    MID = "mid", _("中")
    HIGH = "high", _("高")
    UNKNOWN = "", _("未知")


class LeadStatus(models.TextChoices):
    NEW = "new", _("新线索")
    CONTACTED = "contacted", _("已联系")
    QUALIFIED = "qualified", _("已确认")
    WON = "won", _("已成交")
    LOST = "lost", _("已流失")


class Source(models.TextChoices):
    ROOM = "room", _("直播间")
    INVITE = "invite", _("邀请")
    QR = "qr", _("二维码")
    CAMPAIGN = "campaign", _("营销活动")
    IMPORT = "import", _("导入")
    API = "api", _("接口")
    OTHER = "other", _("其他")


class Lifecycle(models.TextChoices):
    PROSPECT = "prospect", _("潜在客户")
    NEW_CUSTOMER = "new_customer", _("新客户")
    ACTIVE = "active", _("活跃客户")
    AT_RISK = "at_risk", _("流失风险")
    LAPSED = "lapsed", _("已流失客户")


class Contact(TenantModel):
    """One person in one organisation: the lead the sales team works."""

    # Every re-score rewrites the row and therefore every index on it: the composite
    # (org, …) indexes in Meta serve the org-scoped look-ups, so the single-column org and
    # created_at indexes Django would add are left out.
    org = models.ForeignKey(
        "core.Organization", on_delete=models.CASCADE, db_index=False, verbose_name=_("组织")
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    nickname = models.CharField(_("昵称"), max_length=64, blank=True)
    avatar_url = models.URLField(_("头像"), blank=True)
    gender = models.CharField(
        _("性别"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN
    )
    birth_year = models.PositiveSmallIntegerField(_("出生年份"), null=True, blank=True)
    province = models.CharField(_("省份"), max_length=32, blank=True)
    city = models.CharField(_("城市"), max_length=32, blank=True)
    # Custom attributes staff set on a lead ({"肤质": "干性"}): strings, edited through the
    # lead API (crm.services.leads.lead_profile_update).
    attributes = models.JSONField(_("自定义属性"), default=dict, blank=True)
    income_level = models.CharField(
        _("收入水平"), max_length=10, choices=IncomeLevel.choices, blank=True, default=""
    )
    tags = models.JSONField(_("标签"), default=list, blank=True)
    source = models.CharField(
        _("来源"), max_length=20, choices=Source.choices, default=Source.OTHER
    )
    source_detail = models.JSONField(_("来源详情"), default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_contacts",
        verbose_name=_("负责人"),
    )
    status = models.CharField(
        _("状态"), max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW
    )
    # Score fields are written only by the scoring engine (crm.services.scoring).
    # Indexed through (org, -score) and (org, grade) only: every extra index is written on
    # each re-score of every lead (bench/scoring.py).
    score = models.IntegerField(_("评分"), null=True, blank=True)
    grade = models.CharField(_("等级"), max_length=4, blank=True)
    score_breakdown = models.JSONField(_("评分明细"), default=dict, blank=True)
    scored_at = models.DateTimeField(_("评分时间"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("最近活跃"), null=True, blank=True)
    erased_at = models.DateTimeField(_("个人信息删除时间"), null=True, blank=True)
    # One-ID: a contact folded into another keeps its row (so an admin can undo the merge)
    # but leaves every list, segment and score.
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("已合并到"),
    )
    # RFM and lifecycle, derived from order events (crm.services.rfm).
    lifecycle = models.CharField(
        _("生命周期"), max_length=16, choices=Lifecycle.choices, default=Lifecycle.PROSPECT
    )
    order_count = models.PositiveIntegerField(_("订单数"), default=0)
    order_amount = models.FloatField(_("订单金额"), default=0)
    last_order_at = models.DateTimeField(_("最近下单"), null=True, blank=True)
    rfm = models.CharField(_("RFM"), max_length=3, blank=True, default="")

    class Meta:
        verbose_name = _("线索")
        verbose_name_plural = _("线索")
        indexes = [
            models.Index(fields=["org", "-score"]),
            models.Index(fields=["org", "grade"]),
            models.Index(fields=["org", "owner", "status"]),
        ]

    def __str__(self) -> str:
        return self.nickname or f"#{self.pk}"


class IdentityKind(models.TextChoices):
    PHONE = "phone", _("手机号")
    OPENID = "openid", _("OpenID")
    UNIONID = "unionid", _("UnionID")
    GUEST = "guest", _("游客ID")


class ContactIdentity(TenantModel):
    """One identifier of a contact. Values are encrypted; look-ups go through value_hash.

    ``app_id`` scopes openids (an openid is per official account / mini-program).
    """

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="identities", verbose_name=_("线索")
    )
    kind = models.CharField(_("类型"), max_length=10, choices=IdentityKind.choices)
    app_id = models.CharField(_("应用"), max_length=64, blank=True, default="")
    value_hash = models.CharField(_("查找哈希"), max_length=64)
    value_encrypted = models.TextField(_("加密值"))

    class Meta:
        verbose_name = _("身份标识")
        verbose_name_plural = _("身份标识")
        constraints = [
            models.UniqueConstraint(
                fields=["org", "kind", "app_id", "value_hash"], name="uniq_identity_per_org"
            ),
        ]


class Event(TenantModel):
    """Append-only behaviour log. ``value`` holds the number rules aggregate (watch seconds,
    order amount); ``key`` makes ingestion idempotent per organisation (through ``EventKey``).

    On PostgreSQL the table is range-partitioned by month of ``occurred_at`` (migration 0009,
    ``crm.services.event_partitions``): its primary key there is ``(id, occurred_at)``, since
    PostgreSQL wants the partition key in every unique index, while Django keeps ``id`` as the
    pk (ids come from one identity sequence, so ``id`` alone stays unique). Nothing may hold a
    foreign key to an event: the database cannot reference a partitioned table by ``id``."""

    # Every event insert writes every index: the composite indexes below cover the org, contact
    # and time look-ups, so the single-column ones Django would add are left out.
    org = models.ForeignKey(
        "core.Organization", on_delete=models.CASCADE, db_index=False, verbose_name=_("组织")
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        verbose_name=_("线索"),
    )
    type = models.CharField(_("类型"), max_length=32)
    occurred_at = models.DateTimeField(_("发生时间"))
    room_id = models.BigIntegerField(_("直播间"), null=True, blank=True)
    value = models.FloatField(_("数值"), null=True, blank=True)
    props = models.JSONField(_("属性"), default=dict, blank=True)
    key = models.CharField(_("幂等键"), max_length=128, null=True, blank=True)

    class Meta:
        verbose_name = _("行为事件")
        verbose_name_plural = _("行为事件")
        indexes = [
            models.Index(fields=["contact", "type", "occurred_at"]),
            models.Index(fields=["org", "type", "occurred_at"]),
            models.Index(fields=["org", "room_id", "type"]),
            # A lead's timeline (newest first, every type) and an organisation's time range
            # (stats, retention): each reads one index range per monthly partition.
            models.Index(fields=["contact", "occurred_at"], name="crm_event_contact_time_idx"),
            models.Index(fields=["org", "occurred_at"], name="crm_event_org_time_idx"),
        ]


class EventKey(models.Model):
    """One idempotency key of the event log: ``(org, key)`` is unique here, outside the
    partitioned event table, because PostgreSQL only enforces uniqueness on a partitioned
    table per partition (the partition key must be in the index), and a replayed delivery
    may carry another ``occurred_at`` than the first. Written in the same statement as the
    event (``crm.services.events``); ``occurred_at`` lets retention prune keys with their
    events."""

    org = models.ForeignKey(
        "core.Organization", on_delete=models.CASCADE, db_index=False, verbose_name=_("组织")
    )
    key = models.CharField(_("幂等键"), max_length=128)
    occurred_at = models.DateTimeField(_("发生时间"))

    unscoped = models.Manager()
    objects = TenantManager()

    class Meta:
        verbose_name = _("事件幂等键")
        verbose_name_plural = _("事件幂等键")
        default_manager_name = "unscoped"
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(fields=["org", "key"], name="uniq_event_key_per_org")
        ]

    def __str__(self) -> str:
        return self.key


class ContactMerge(TenantModel):
    """One One-ID merge: ``absorbed`` folded into ``survivor``. ``moved`` lists every row that
    changed hands (model label → field → ids) and ``survivor_before`` the survivor's fields and
    consents before the merge, so an admin can undo it exactly."""

    survivor = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="merges_won", verbose_name=_("保留线索")
    )
    absorbed = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="merges_lost", verbose_name=_("被合并线索")
    )
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    moved = models.JSONField(_("迁移记录"), default=dict, blank=True)
    survivor_before = models.JSONField(_("合并前状态"), default=dict, blank=True)
    undone_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("线索合并")
        verbose_name_plural = _("线索合并")


# --- Consent ledger ------------------------------------------------------------------------


class ConsentPurpose(models.TextChoices):
    SMS_MARKETING = "sms_marketing", _("短信营销")
    WECHAT_MARKETING = "wechat_marketing", _("微信营销")
    PROFILING = "profiling", _("画像与评分")
    WECHAT_SERVICE = "wechat_service", _("微信服务通知")


# Profiling runs under the privacy notice until refused; everything else is opt-in.
CONSENT_DEFAULTS = {ConsentPurpose.PROFILING.value: True}


class Consent(TenantModel):
    """Current consent state per contact × purpose (the ledger's latest word), so set-based
    SQL can join it. Written only by crm.services.consent together with a ConsentEvent."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="consents", verbose_name=_("线索")
    )
    purpose = models.CharField(_("用途"), max_length=32, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("已同意"))
    source = models.CharField(_("来源"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("同意状态")
        verbose_name_plural = _("同意状态")
        constraints = [
            models.UniqueConstraint(fields=["contact", "purpose"], name="uniq_consent_purpose")
        ]
        indexes = [models.Index(fields=["org", "purpose", "granted"])]


class ConsentAction(models.TextChoices):
    GRANT = "grant", _("同意")
    WITHDRAW = "withdraw", _("撤回")


class ConsentEvent(TenantModel):
    """Append-only consent ledger: what, when, where and the evidence."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="consent_events", verbose_name=_("线索")
    )
    purpose = models.CharField(_("用途"), max_length=32, choices=ConsentPurpose.choices)
    action = models.CharField(_("动作"), max_length=10, choices=ConsentAction.choices)
    source = models.CharField(_("来源"), max_length=64)
    evidence = models.JSONField(_("证据"), default=dict, blank=True)
    at = models.DateTimeField(_("时间"), db_index=True)

    class Meta:
        verbose_name = _("同意记录")
        verbose_name_plural = _("同意记录")
        ordering = ["at", "id"]


# --- Segments and scoring ------------------------------------------------------------------


class Segment(TenantModel):
    """A saved condition (crm.conditions) over the organisation's contacts."""

    name = models.CharField(_("名称"), max_length=100)
    condition = models.JSONField(_("条件"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("创建人"),
    )

    class Meta:
        verbose_name = _("人群")
        verbose_name_plural = _("人群")

    def __str__(self) -> str:
        return self.name


def default_grades() -> list:
    return [{"grade": "A", "min": 80}, {"grade": "B", "min": 50}]


class ScoringModel(TenantModel):
    """An organisation's scoring model: its rules and grade thresholds (highest first; below
    every threshold the grade is ``fallback_grade``)."""

    name = models.CharField(_("名称"), max_length=100, default="默认评分模型")
    grades = models.JSONField(_("等级阈值"), default=default_grades)
    fallback_grade = models.CharField(_("最低等级"), max_length=4, default="C")
    version = models.PositiveIntegerField(_("版本"), default=1)

    class Meta:
        verbose_name = _("评分模型")
        verbose_name_plural = _("评分模型")
        constraints = [models.UniqueConstraint(fields=["org"], name="one_scoring_model_per_org")]

    def __str__(self) -> str:
        return self.name


class ScoringRule(TenantModel):
    """``points`` when ``condition`` holds. ``max_points`` caps the rule (and turns a single
    count condition into "points per event, up to max"); ``half_life_days`` decays the points
    of a behaviour rule with the age of its latest matching event."""

    model = models.ForeignKey(
        ScoringModel, on_delete=models.CASCADE, related_name="rules", verbose_name=_("评分模型")
    )
    name = models.CharField(_("名称"), max_length=100)
    points = models.IntegerField(_("分值"))
    condition = models.JSONField(_("条件"))
    max_points = models.PositiveIntegerField(_("最高分"), null=True, blank=True)
    half_life_days = models.FloatField(_("半衰期(天)"), null=True, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("评分规则")
        verbose_name_plural = _("评分规则")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.points:+d})"


class ScoreHistory(TenantModel):
    # Written for every changed lead of a bulk re-score: one composite index, nothing more.
    org = models.ForeignKey(
        "core.Organization", on_delete=models.CASCADE, db_index=False, verbose_name=_("组织")
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="score_history",
        db_index=False,
        verbose_name=_("线索"),
    )
    score = models.IntegerField(_("评分"), null=True, blank=True)
    grade = models.CharField(_("等级"), max_length=4, blank=True)
    old_score = models.IntegerField(_("原评分"), null=True, blank=True)
    old_grade = models.CharField(_("原等级"), max_length=4, blank=True)
    reason = models.CharField(_("原因"), max_length=32)

    class Meta:
        verbose_name = _("评分历史")
        verbose_name_plural = _("评分历史")
        indexes = [models.Index(fields=["contact", "created_at"])]


# --- Sales workflow ------------------------------------------------------------------------


class Note(TenantModel):
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="notes", verbose_name=_("线索")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        verbose_name=_("作者"),
    )
    body = models.TextField(_("内容"), max_length=4000)

    class Meta:
        verbose_name = _("备注")
        verbose_name_plural = _("备注")
        ordering = ["-created_at"]


class TaskKind(models.TextChoices):
    FOLLOW_UP = "follow_up", _("跟进")
    HOT_LEAD = "hot_lead", _("热线索跟进")


class Task(TenantModel):
    """A follow-up with a due time. A task with ``returns_to_pool`` sends its lead back to the
    pool (公海) when it lapses undone (swept by crm.tasks.lead_sla_sweep)."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("线索")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="crm_tasks",
        verbose_name=_("负责人"),
    )
    kind = models.CharField(
        _("类型"), max_length=16, choices=TaskKind.choices, default=TaskKind.FOLLOW_UP
    )
    title = models.CharField(_("标题"), max_length=200)
    due_at = models.DateTimeField(_("截止时间"))
    done_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    lapsed_at = models.DateTimeField(_("超时时间"), null=True, blank=True)
    returns_to_pool = models.BooleanField(_("超时退回公海"), default=False)
    context = models.JSONField(_("上下文"), default=dict, blank=True)

    class Meta:
        verbose_name = _("跟进任务")
        verbose_name_plural = _("跟进任务")
        ordering = ["due_at"]
        indexes = [models.Index(fields=["due_at"], name="crm_task_open_due")]


class Notification(TenantModel):
    """A staff notification; the row is the truth, the real-time push is a hint."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="crm_notifications",
        verbose_name=_("接收人"),
    )
    kind = models.CharField(_("类型"), max_length=32)
    title = models.CharField(_("标题"), max_length=200)
    data = models.JSONField(_("数据"), default=dict, blank=True)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at"]


class CrmSettings(TenantModel):
    """Per-organisation lead-pool policy."""

    hot_lead_sla_minutes = models.PositiveIntegerField(_("热线索跟进时限(分钟)"), default=30)
    follow_up_sla_minutes = models.PositiveIntegerField(_("跟进时限(分钟)"), default=24 * 60)
    round_robin_cursor = models.PositiveIntegerField(_("轮询游标"), default=0)
    # Null keeps events for ever; N deletes this organisation's events (and their idempotency
    # keys) older than N days (crm.services.event_partitions.event_retention_apply).
    event_retention_days = models.PositiveIntegerField(
        _("行为事件保留天数"), null=True, blank=True, help_text=_("留空则永久保留")
    )

    class Meta:
        verbose_name = _("线索池设置")
        verbose_name_plural = _("线索池设置")
        constraints = [models.UniqueConstraint(fields=["org"], name="one_crm_settings_per_org")]


class IntegrationToken(TenantModel):
    """A secret an external system (the mall) uses to post events. Only the hash is stored."""

    name = models.CharField(_("名称"), max_length=100)
    token_hash = models.CharField(_("令牌哈希"), max_length=64, unique=True)
    prefix = models.CharField(_("前缀"), max_length=12)
    is_active = models.BooleanField(_("启用"), default=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)

    class Meta:
        verbose_name = _("集成令牌")
        verbose_name_plural = _("集成令牌")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class LeadJobKind(models.TextChoices):
    IMPORT = "import", _("导入")
    EXPORT = "export", _("导出")


class LeadJobState(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("进行中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("失败")


class LeadJob(TenantModel):
    """A CSV import or export running in the background, with its progress and report. The
    file (the upload, or the export) lives in the default storage under ``file`` and is
    deleted by ``crm.lead_jobs_sweep`` after ``FILE_HOURS``."""

    kind = models.CharField(_("类型"), max_length=8, choices=LeadJobKind.choices)
    state = models.CharField(
        _("状态"), max_length=8, choices=LeadJobState.choices, default=LeadJobState.QUEUED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("发起人"),
    )
    params = models.JSONField(_("参数"), default=dict, blank=True)
    file = models.CharField(_("文件"), max_length=255, blank=True)
    total = models.PositiveIntegerField(_("总行数"), default=0)
    processed = models.PositiveIntegerField(_("已处理"), default=0)
    created = models.PositiveIntegerField(_("新建"), default=0)
    merged = models.PositiveIntegerField(_("合并"), default=0)
    # [{"row": n, "field": "phone", "message": "…"}]: never the rejected value itself (it may
    # be someone's personal data, and erasure scans every table).
    errors = models.JSONField(_("错误"), default=list, blank=True)
    error_count = models.PositiveIntegerField(_("错误行数"), default=0)
    message = models.CharField(_("说明"), max_length=300, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("导入导出任务")
        verbose_name_plural = _("导入导出任务")
        indexes = [models.Index(fields=["org", "created_at"])]


class LapseAction(models.TextChoices):
    """What happens to a hot lead whose owner let the follow-up SLA lapse."""

    POOL = "pool", _("退回公海")
    NEXT_MEMBER = "next_member", _("转给团队下一位成员")


# An SLA longer than a week is no longer a hot-lead SLA (and keeps due_at arithmetic sane).
HOT_LEAD_SLA_MAX_MINUTES = 7 * 24 * 60


class SalesTeam(TenantModel):
    """Sales people who share leads in turn. ``cursor`` counts the assignments handed out;
    it only moves through one atomic ``UPDATE … RETURNING`` (crm.services.teams).

    Follow-up rules: ``hot_lead_sla_minutes`` overrides the organisation's hot-lead SLA
    (null = ``CrmSettings.hot_lead_sla_minutes``); ``lapse_action`` says where a hot lead goes
    when a member lets that SLA lapse (crm.services.leads.lead_sla_sweep)."""

    name = models.CharField(_("名称"), max_length=64)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", blank=True, verbose_name=_("成员")
    )
    is_default = models.BooleanField(_("默认团队"), default=False)
    cursor = models.PositiveBigIntegerField(_("轮转位置"), default=0)
    hot_lead_sla_minutes = models.PositiveIntegerField(
        _("热线索跟进时限(分钟)"), null=True, blank=True
    )
    lapse_action = models.CharField(
        _("超时处理"), max_length=16, choices=LapseAction.choices, default=LapseAction.POOL
    )

    class Meta:
        verbose_name = _("销售团队")
        verbose_name_plural = _("销售团队")
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="uniq_sales_team_name"),
            models.UniqueConstraint(
                fields=["org"],
                condition=models.Q(is_default=True),
                name="one_default_sales_team",
            ),
            models.CheckConstraint(
                condition=models.Q(hot_lead_sla_minutes__isnull=True)
                | models.Q(
                    hot_lead_sla_minutes__gte=1,
                    hot_lead_sla_minutes__lte=HOT_LEAD_SLA_MAX_MINUTES,
                ),
                name="sales_team_sla_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(lapse_action__in=["pool", "next_member"]),
                name="sales_team_lapse_action_known",
            ),
        ]


class AssignmentRule(TenantModel):
    """Which team gets a lead: the first rule (lowest ``priority``) whose room or segment
    matches; no match → the default team; no default team → every sales member in turn."""

    team = models.ForeignKey(
        SalesTeam, on_delete=models.CASCADE, related_name="rules", verbose_name=_("团队")
    )
    priority = models.PositiveIntegerField(_("优先级"), default=100)
    room_id = models.BigIntegerField(_("直播间"), null=True, blank=True)
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.CASCADE, verbose_name=_("人群")
    )

    class Meta:
        verbose_name = _("分配规则")
        verbose_name_plural = _("分配规则")
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(room_id__isnull=False) | models.Q(segment__isnull=False),
                name="assignment_rule_has_a_match",
            )
        ]
