"""WeChat official accounts and mini-programs, callbacks and windows (WeChat identity issue).

Credentials (appid, secret, AES key) are encrypted at rest with ``core.pii``; the appid also
has a keyed hash so an organisation cannot register the same app twice. Openids are stored
as ``core.pii`` hashes for look-ups (plus the encrypted value where a sender needs it back).
Rules that WeChat enforces on its side are mirrored here so we never try a send it refuses:
the 48-hour customer-service window, follower state, one-shot mini-program consents.

These models lived in the campaigns app until the WeChat code became its own app; each keeps
its ``campaigns_*`` table (``Meta.db_table``) so the move needed no data migration
(wechat/migrations/0001_move_from_campaigns.py moves them in Django's state only).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from core import pii
from core.models import TenantModel

__all__ = [
    "WeChatAccount",
    "WeChatAccountKind",
    "WeChatEncryptMode",
    "WeChatQrScene",
    "WeChatInboundMessage",
    "WeChatServiceWindow",
    "WeChatFollower",
    "MpSubscribeConsent",
    "WeChatKeywordReply",
    "PhoneOtp",
]


class WeChatAccountKind(models.TextChoices):
    OFFICIAL = "oa", _("公众号")
    MINI_PROGRAM = "mp", _("小程序")


class WeChatEncryptMode(models.TextChoices):
    PLAIN = "plain", _("明文模式")
    SAFE = "safe", _("安全模式")


class WeChatAccount(TenantModel):
    """One official account (公众号) or mini-program of an organisation.

    Use ``wechat.accounts`` to create/update it (it encrypts the secrets); read
    the clear values with ``appid`` / ``secret()`` / ``aes_key()``.
    """

    kind = models.CharField(
        _("类型"), max_length=4, choices=WeChatAccountKind.choices, default="oa"
    )
    name = models.CharField(_("名称"), max_length=64)
    appid_encrypted = models.TextField(_("AppID（加密）"))
    appid_hash = models.CharField(_("AppID 哈希"), max_length=64)
    secret_encrypted = models.TextField(_("AppSecret（加密）"), blank=True)
    aes_key_encrypted = models.TextField(_("EncodingAESKey（加密）"), blank=True)
    token = models.CharField(_("回调 Token"), max_length=64, blank=True)
    encrypt_mode = models.CharField(
        _("消息加解密方式"),
        max_length=8,
        choices=WeChatEncryptMode.choices,
        default=WeChatEncryptMode.PLAIN,
    )
    welcome_text = models.CharField(_("关注欢迎语"), max_length=300, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        db_table = "campaigns_wechataccount"
        verbose_name = _("微信公众号/小程序")
        verbose_name_plural = _("微信公众号/小程序")
        constraints = [
            models.UniqueConstraint(fields=["org", "appid_hash"], name="uniq_wechat_app_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def appid(self) -> str:
        cached = self.__dict__.get("_appid")
        if cached is None:
            cached = pii.decrypt(self.appid_encrypted) if self.appid_encrypted else ""
            self.__dict__["_appid"] = cached
        return cached

    def secret(self) -> str:
        return pii.decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    def aes_key(self) -> str:
        return pii.decrypt(self.aes_key_encrypted) if self.aes_key_encrypted else ""


class QrKind(models.TextChoices):
    TEMPORARY = "temporary", _("临时")
    PERMANENT = "permanent", _("永久")


class WeChatQrScene(TenantModel):
    """A parametric QR code (带参数二维码) of an official account, cached until it expires.

    ``scene`` is the scene string WeChat echoes back on subscribe/SCAN: ``room:{id}``,
    ``invite:{code}``, ``campaign:{id}``.
    """

    account = models.ForeignKey(
        WeChatAccount, on_delete=models.CASCADE, related_name="qr_scenes", verbose_name=_("公众号")
    )
    scene = models.CharField(_("场景值"), max_length=64)
    kind = models.CharField(_("类型"), max_length=10, choices=QrKind.choices)
    ticket = models.CharField(_("ticket"), max_length=200)
    url = models.CharField(_("二维码内容"), max_length=300)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    scans = models.PositiveIntegerField(_("扫码次数"), default=0)
    subscribes = models.PositiveIntegerField(_("扫码关注数"), default=0)

    class Meta:
        db_table = "campaigns_wechatqrscene"
        verbose_name = _("带参数二维码")
        verbose_name_plural = _("带参数二维码")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "scene", "kind"], name="uniq_qr_scene_per_account"
            )
        ]


class WeChatInboundMessage(TenantModel):
    """Dedupe record of a callback push: WeChat retries a push it got no answer for within 5 s
    (three times), so each push is processed once. Rows older than a few days are swept."""

    account = models.ForeignKey(WeChatAccount, on_delete=models.CASCADE, verbose_name=_("公众号"))
    dedupe_key = models.CharField(_("去重键"), max_length=128)
    msg_type = models.CharField(_("消息类型"), max_length=32, blank=True)

    class Meta:
        db_table = "campaigns_wechatinboundmessage"
        verbose_name = _("回调消息去重")
        verbose_name_plural = _("回调消息去重")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "dedupe_key"], name="uniq_inbound_per_account"
            )
        ]


class WindowOpener(models.TextChoices):
    MESSAGE = "message", _("用户消息")
    FOLLOW = "follow", _("关注")
    SCAN = "scan", _("扫码")
    CLICK = "click", _("菜单点击")


class WeChatServiceWindow(TenantModel):
    """The 48-hour customer-service (客服消息) window of one openid on one official account.

    Opened (and reset) by every inbound message or event; ``sent_count`` counts the customer
    messages sent since. See ``wechat.windows`` for the rules.
    """

    account = models.ForeignKey(WeChatAccount, on_delete=models.CASCADE, verbose_name=_("公众号"))
    openid_hash = models.CharField(_("OpenID 哈希"), max_length=64)
    last_inbound_at = models.DateTimeField(_("最近互动时间"))
    opened_by = models.CharField(_("互动类型"), max_length=10, choices=WindowOpener.choices)
    sent_count = models.PositiveSmallIntegerField(_("窗口内已发送"), default=0)

    class Meta:
        db_table = "campaigns_wechatservicewindow"
        verbose_name = _("客服消息窗口")
        verbose_name_plural = _("客服消息窗口")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "openid_hash"], name="uniq_window_per_openid"
            )
        ]


class WeChatFollower(TenantModel):
    """Follow state of one openid on one official account. Unsubscribed → no WeChat sends."""

    account = models.ForeignKey(
        WeChatAccount, on_delete=models.CASCADE, related_name="followers", verbose_name=_("公众号")
    )
    contact = models.ForeignKey(
        "crm.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="wechat_follows",
        verbose_name=_("线索"),
    )
    openid_hash = models.CharField(_("OpenID 哈希"), max_length=64)
    openid_encrypted = models.TextField(_("OpenID（加密）"))
    subscribed = models.BooleanField(_("已关注"), default=True)
    subscribed_at = models.DateTimeField(_("关注时间"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("取关时间"), null=True, blank=True)
    scene = models.CharField(_("关注场景"), max_length=64, blank=True)

    class Meta:
        db_table = "campaigns_wechatfollower"
        verbose_name = _("公众号粉丝")
        verbose_name_plural = _("公众号粉丝")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "openid_hash"], name="uniq_follower_per_account"
            )
        ]
        indexes = [models.Index(fields=["account", "subscribed"])]


class ConsentStatus(models.TextChoices):
    UNUSED = "unused", _("未使用")
    USED = "used", _("已使用")


class MpSubscribeConsent(TenantModel):
    """One "allow" the user gave to one subscribe-message template of a mini-program.

    WeChat grants one send per acceptance (一次性订阅): a send consumes one unused row.
    """

    account = models.ForeignKey(WeChatAccount, on_delete=models.CASCADE, verbose_name=_("小程序"))
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.CASCADE,
        related_name="mp_consents",
        verbose_name=_("线索"),
    )
    template_id = models.CharField(_("模板ID"), max_length=64)
    status = models.CharField(
        _("状态"), max_length=8, choices=ConsentStatus.choices, default=ConsentStatus.UNUSED
    )
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)

    class Meta:
        db_table = "campaigns_mpsubscribeconsent"
        verbose_name = _("小程序订阅授权")
        verbose_name_plural = _("小程序订阅授权")
        indexes = [models.Index(fields=["contact", "template_id", "status"])]


class KeywordMatch(models.TextChoices):
    EXACT = "exact", _("完全匹配")
    CONTAINS = "contains", _("包含")


class KeywordAction(models.TextChoices):
    TEXT = "text", _("回复文本")
    LATEST_REPLAY = "replay", _("最新回放链接")
    ROOM = "room", _("直播间链接")


class WeChatKeywordReply(TenantModel):
    """A keyword auto-reply of an official account (e.g. 回放 → latest replay link)."""

    account = models.ForeignKey(
        WeChatAccount,
        on_delete=models.CASCADE,
        related_name="keyword_replies",
        verbose_name=_("公众号"),
    )
    keyword = models.CharField(_("关键词"), max_length=32)
    match = models.CharField(
        _("匹配方式"), max_length=10, choices=KeywordMatch.choices, default=KeywordMatch.EXACT
    )
    action = models.CharField(
        _("动作"), max_length=10, choices=KeywordAction.choices, default=KeywordAction.TEXT
    )
    text = models.CharField(_("回复内容"), max_length=600, blank=True)
    priority = models.IntegerField(_("优先级"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        db_table = "campaigns_wechatkeywordreply"
        verbose_name = _("关键词回复")
        verbose_name_plural = _("关键词回复")
        ordering = ["-priority", "id"]


class PhoneOtp(TenantModel):
    """A one-time code sent by SMS to bind a phone to a viewer's contact.

    The code itself is stored only as a keyed hash; ``attempts`` caps guessing.
    """

    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="phone_otps", verbose_name=_("线索")
    )
    phone_hash = models.CharField(_("手机号哈希"), max_length=64)
    phone_encrypted = models.TextField(_("手机号（加密）"))
    code_hash = models.CharField(_("验证码哈希"), max_length=100)
    expires_at = models.DateTimeField(_("过期时间"))
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    consumed_at = models.DateTimeField(_("使用时间"), null=True, blank=True)

    class Meta:
        db_table = "campaigns_phoneotp"
        verbose_name = _("手机验证码")
        verbose_name_plural = _("手机验证码")
        indexes = [models.Index(fields=["org", "contact", "phone_hash", "created_at"])]
