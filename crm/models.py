"""Contacts (leads), their identities and the append-only event log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TenantModel


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


class Contact(TenantModel):
    """One person in one organisation: the lead the sales team works."""

    nickname = models.CharField(_("昵称"), max_length=64, blank=True)
    avatar_url = models.URLField(_("头像"), blank=True)
    gender = models.CharField(
        _("性别"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN
    )
    birth_year = models.PositiveSmallIntegerField(_("出生年份"), null=True, blank=True)
    province = models.CharField(_("省份"), max_length=32, blank=True)
    city = models.CharField(_("城市"), max_length=32, blank=True)
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
    score = models.IntegerField(_("评分"), null=True, blank=True, db_index=True)
    grade = models.CharField(_("等级"), max_length=4, blank=True, db_index=True)
    score_breakdown = models.JSONField(_("评分明细"), default=list, blank=True)
    scored_at = models.DateTimeField(_("评分时间"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("最近活跃"), null=True, blank=True)
    erased_at = models.DateTimeField(_("个人信息删除时间"), null=True, blank=True)

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
    order amount); ``key`` makes ingestion idempotent per organisation."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="events", verbose_name=_("线索")
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
        ]
        constraints = [
            models.UniqueConstraint(fields=["org", "key"], name="uniq_event_key_per_org")
        ]
