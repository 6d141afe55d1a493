"""Journey versions and the staff contact points owner notifications go to.

Kept apart from ``messaging.py`` so the journey builder's changes stay in one place.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TenantModel

__all__ = ["JourneyVersion", "StaffContact", "StaffWeChatBind"]


class JourneyVersion(TenantModel):
    """The steps of an earlier version of a journey, kept while members still walk them.

    Editing the steps of a journey bumps ``Journey.version``; a member keeps the version it
    entered with (``JourneyMembership.version``), so its ``step_index`` always points into
    the list it started on — an edit never moves anyone to a step they were not meant for.
    """

    journey = models.ForeignKey(
        "campaigns.Journey", on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(_("版本"))
    steps = models.JSONField(_("步骤"), default=list)

    class Meta:
        verbose_name = _("旅程版本")
        verbose_name_plural = _("旅程版本")
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="uniq_journey_version")
        ]


class StaffContact(TenantModel):
    """Where a staff member wants owner notifications (hot leads) outside the workspace.

    A work phone and the openid under the org's official account are personal data: stored
    encrypted with ``core.pii`` plus a keyed hash, exactly like a contact's identities.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_contact",
        verbose_name=_("成员"),
    )
    phone_encrypted = models.TextField(_("手机号（加密）"), blank=True)
    phone_hash = models.CharField(_("手机号哈希"), max_length=64, blank=True)
    # Masked forms kept beside the ciphertext so lists (admin, API) never decrypt.
    phone_masked = models.CharField(_("手机号（脱敏）"), max_length=20, blank=True)
    wechat_account = models.ForeignKey(
        "wechat.WeChatAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("公众号"),
    )
    openid_encrypted = models.TextField(_("OpenID（加密）"), blank=True)
    openid_hash = models.CharField(_("OpenID 哈希"), max_length=64, blank=True)
    openid_masked = models.CharField(_("OpenID（脱敏）"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("成员通知方式")
        verbose_name_plural = _("成员通知方式")


class StaffWeChatBind(TenantModel):
    """A one-time code behind a staff member's "scan to bind my WeChat" QR code.

    Nobody knows their own openid; scanning the QR code (scene ``staff-bind:<code>``) makes
    WeChat push it to us. Only the code's keyed hash is stored here. Single use
    (``used_at``), short-lived (``expires_at``), bound to one member, org and official
    account. ``openid_hash`` records who used it, so a replayed push gets the same answer.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("成员")
    )
    account = models.ForeignKey(
        "wechat.WeChatAccount",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("公众号"),
    )
    code_hash = models.CharField(_("绑定码哈希"), max_length=64, unique=True)
    qr = models.ForeignKey(
        "wechat.WeChatQrScene",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("二维码"),
    )
    expires_at = models.DateTimeField(_("过期时间"))
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)
    openid_hash = models.CharField(_("OpenID 哈希"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("微信扫码绑定码")
        verbose_name_plural = _("微信扫码绑定码")
        indexes = [models.Index(fields=["org", "user", "created_at"])]
