"""Chat, moderation and per-room chat settings (real-time hub issue).

Moderation actions are written to ``core.models.AuditLog`` (action ``chat.*``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TenantModel

__all__ = [
    "ChatStatus",
    "ChatMessage",
    "RoomChatSettings",
    "SensitiveAction",
    "SensitiveWord",
    "RestrictionKind",
    "ChatRestriction",
]


class ChatStatus(models.TextChoices):
    VISIBLE = "visible", _("可见")
    SHADOW = "shadow", _("仅作者可见")  # shadow-banned author: only they (and staff) see it
    PENDING = "pending", _("待审核")  # pre-moderation queue
    DELETED = "deleted", _("已删除")


class ChatMessage(TenantModel):
    room = models.ForeignKey(
        "livecommerce.Room", on_delete=models.CASCADE, related_name="chat_messages"
    )
    # Null for staff (the host or an admin speaking in the room).
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nickname = models.CharField(_("昵称"), max_length=64, blank=True)
    text = models.CharField(_("内容"), max_length=500)
    status = models.CharField(
        _("状态"), max_length=10, choices=ChatStatus.choices, default=ChatStatus.VISIBLE
    )
    masked = models.BooleanField(_("含敏感词已屏蔽"), default=False)
    device = models.CharField(_("设备"), max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)

    class Meta:
        verbose_name = _("弹幕")
        verbose_name_plural = _("弹幕")
        indexes = [
            models.Index(fields=["room", "status", "-id"]),
            models.Index(fields=["room", "contact"]),
        ]

    def __str__(self) -> str:
        return self.text[:30]


class RoomChatSettings(TenantModel):
    """Per-room chat options; everything beyond the default rate is off until the host turns it on."""

    room = models.OneToOneField(
        "livecommerce.Room", on_delete=models.CASCADE, related_name="chat_settings"
    )
    # Seconds a viewer must wait between two messages (the default ~1 s comes from
    # RATE_LIMITS["chat_viewer"]; 0 keeps that default).
    viewer_interval_seconds = models.PositiveIntegerField(_("发言间隔（秒）"), default=0)
    # Slow mode for new viewers: contacts younger than ``new_viewer_minutes`` may post once
    # every ``slow_mode_seconds``.
    slow_mode_seconds = models.PositiveIntegerField(_("新观众慢速模式（秒）"), default=0)
    new_viewer_minutes = models.PositiveIntegerField(_("新观众判定（分钟）"), default=10)
    premoderation = models.BooleanField(_("先审后发"), default=False)
    announcement = models.CharField(_("公告"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("弹幕设置")
        verbose_name_plural = _("弹幕设置")


class SensitiveAction(models.TextChoices):
    REJECT = "reject", _("拒绝发送")
    MASK = "mask", _("替换为*")


class SensitiveWord(TenantModel):
    """A word (or a regular expression) the organisation does not want in chat."""

    pattern = models.CharField(_("词或正则"), max_length=200)
    is_regex = models.BooleanField(_("正则"), default=False)
    action = models.CharField(
        _("处理"), max_length=10, choices=SensitiveAction.choices, default=SensitiveAction.REJECT
    )

    class Meta:
        verbose_name = _("敏感词")
        verbose_name_plural = _("敏感词")
        constraints = [
            models.UniqueConstraint(fields=["org", "pattern"], name="uniq_sensitive_word")
        ]

    def __str__(self) -> str:
        return self.pattern


class RestrictionKind(models.TextChoices):
    MUTE = "mute", _("禁言")
    BAN = "ban", _("拉黑")
    SHADOW = "shadow", _("隐身禁言")


class ChatRestriction(TenantModel):
    """A mute, ban or shadow-ban on a contact, a device or an IP.

    ``room`` null means organisation-wide. ``until`` null means until revoked.
    """

    room = models.ForeignKey(
        "livecommerce.Room", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(_("类型"), max_length=10, choices=RestrictionKind.choices)
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    device = models.CharField(_("设备"), max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    until = models.DateTimeField(_("截止"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("解除时间"), null=True, blank=True)
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("禁言/拉黑")
        verbose_name_plural = _("禁言/拉黑")
        indexes = [models.Index(fields=["org", "kind", "revoked_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(contact=None, device="", ip=None),
                name="restriction_has_a_target",
            )
        ]
