"""Coupons, draws, reservations, follows, invites, replays and clips (live rooms issue)."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.models import BaseModel, TenantModel

__all__ = [
    "ProductClip",
    "CouponKind",
    "Coupon",
    "CouponClaim",
    "DrawEligibility",
    "Draw",
    "DrawWinner",
    "Reservation",
    "Follow",
    "InviteCode",
    "Invite",
    "InviteCredit",
    "Replay",
    "MediaCallback",
    "OnlineSample",
    "new_claim_code",
    "claim_code",
]


class ProductClip(TenantModel):
    """One "now explaining" span: pin history and the shareable replay clip in one row.

    Offsets are seconds from the room's ``started_at`` (our own wall clock: neither
    nginx-rtmp nor SRS writes EXT-X-PROGRAM-DATE-TIME into the playlist).
    """

    room = models.ForeignKey(
        "livecommerce.Room",
        on_delete=models.CASCADE,
        related_name="clips",
        verbose_name=_("直播间"),
    )
    product = models.ForeignKey(
        "livecommerce.Product", on_delete=models.CASCADE, related_name="+", verbose_name=_("商品")
    )
    pinned_at = models.DateTimeField(_("开始讲解"))
    unpinned_at = models.DateTimeField(_("结束讲解"), null=True, blank=True)
    start_s = models.PositiveIntegerField(_("起点(秒)"), default=0)
    end_s = models.PositiveIntegerField(_("终点(秒)"), null=True, blank=True)
    views = models.PositiveIntegerField(_("观看"), default=0)
    clicks = models.PositiveIntegerField(_("点击"), default=0)
    claims = models.PositiveIntegerField(_("领券"), default=0)
    orders = models.PositiveIntegerField(_("下单"), default=0)

    class Meta:
        verbose_name = _("讲解片段")
        verbose_name_plural = _("讲解片段")
        ordering = ["pinned_at", "id"]
        constraints = [
            # At most one open span per room, mirroring RoomProduct.one_pinned_per_room.
            models.UniqueConstraint(
                fields=["room"], condition=Q(unpinned_at__isnull=True), name="one_open_clip"
            )
        ]


class CouponKind(models.TextChoices):
    THRESHOLD = "threshold", _("满减券")
    DISCOUNT = "discount", _("折扣券")
    NO_THRESHOLD = "no_threshold", _("无门槛券")


class Coupon(TenantModel):
    """A coupon batch released into one room.

    ``amount``: yuan off (threshold / no-threshold) or the discount in 折 (8.5 = 15 % off).
    ``claimed`` is the database's count of claims; it never exceeds ``stock``.
    """

    room = models.ForeignKey(
        "livecommerce.Room",
        on_delete=models.CASCADE,
        related_name="coupons",
        verbose_name=_("直播间"),
    )
    name = models.CharField(_("名称"), max_length=60)
    kind = models.CharField(_("类型"), max_length=16, choices=CouponKind.choices)
    amount = models.DecimalField(_("面额/折扣"), max_digits=10, decimal_places=2)
    threshold = models.DecimalField(_("门槛"), max_digits=10, decimal_places=2, default=0)
    stock = models.PositiveIntegerField(_("总量"))
    claimed = models.PositiveIntegerField(_("已领"), default=0)
    per_viewer_limit = models.PositiveSmallIntegerField(_("每人限领"), default=1)
    valid_until = models.DateTimeField(_("有效期至"))
    released_at = models.DateTimeField(_("发放时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("优惠券")
        verbose_name_plural = _("优惠券")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(claimed__lte=F("stock")), name="coupon_no_oversell"),
            models.CheckConstraint(condition=Q(per_viewer_limit__gte=1), name="coupon_limit_pos"),
        ]

    def __str__(self) -> str:
        return self.name


def new_claim_code() -> str:
    """The random part of a verification code (4 digits)."""
    return f"{secrets.randbelow(10**4):04d}"


def claim_code(coupon_id: int, slot: int, suffix: str) -> str:
    """``<coupon>-<slot>-<4 random digits>``: unique by construction ((coupon, slot) is
    unique), so a burst can never lose a claim to a code collision; the random tail keeps
    a neighbour's code from being guessed. Read out at a till or typed into a mall."""
    return f"{coupon_id}-{slot}-{suffix}"


class CouponClaim(TenantModel):
    """One claimed coupon. The unique constraints are the final guard of the claim path:
    ``(coupon, contact, nth)`` stops a double claim, ``(coupon, slot)`` stops an oversell
    (slots are 1..stock, handed out by the Redis script or the database counter)."""

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="claims")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    nth = models.PositiveSmallIntegerField(_("第几张"), default=1)
    slot = models.PositiveIntegerField(_("库存序号"))
    code = models.CharField(_("核销码"), max_length=40, unique=True)
    claimed_at = models.DateTimeField(_("领取时间"))
    clip = models.ForeignKey(
        ProductClip, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    redeemed_at = models.DateTimeField(_("核销时间"), null=True, blank=True)
    redeemed_via = models.CharField(_("核销方式"), max_length=16, blank=True)
    order_ref = models.CharField(_("订单号"), max_length=64, blank=True)
    # False for rows written by the PostgreSQL fast path until the reconciler has recorded
    # their CRM events (the hot path never waits for the event log).
    crm_recorded = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("领券记录")
        verbose_name_plural = _("领券记录")
        constraints = [
            models.UniqueConstraint(fields=["coupon", "contact", "nth"], name="one_claim_per_nth"),
            models.UniqueConstraint(fields=["coupon", "slot"], name="one_claim_per_slot"),
            models.CheckConstraint(condition=Q(slot__gte=1), name="claim_slot_positive"),
        ]


class DrawEligibility(models.TextChoices):
    PRESENT = "present", _("所有在线观众")
    KEYWORD = "keyword", _("评论口令的观众")
    FOLLOWERS = "followers", _("关注主播的观众")
    WATCHED = "watched", _("观看满 N 分钟")


class Draw(TenantModel):
    room = models.ForeignKey("livecommerce.Room", on_delete=models.CASCADE, related_name="draws")
    prize = models.CharField(_("奖品"), max_length=100)
    eligibility = models.CharField(
        _("参与条件"), max_length=12, choices=DrawEligibility.choices, default="present"
    )
    keyword = models.CharField(_("口令"), max_length=50, blank=True)
    min_minutes = models.PositiveIntegerField(_("最少观看分钟"), default=0)
    winner_count = models.PositiveIntegerField(_("中奖人数"), default=1)
    ran_at = models.DateTimeField(_("开奖时间"), null=True, blank=True)
    candidates = models.PositiveIntegerField(_("参与人数"), default=0)

    class Meta:
        verbose_name = _("抽奖")
        verbose_name_plural = _("抽奖")


class DrawWinner(TenantModel):
    draw = models.ForeignKey(Draw, on_delete=models.CASCADE, related_name="winners")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    nickname = models.CharField(max_length=64, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["draw", "contact"], name="one_win_per_draw")]


class Reservation(TenantModel):
    """预约: a viewer asked to be reminded. ``remind_at`` is swept by a periodic task."""

    room = models.ForeignKey(
        "livecommerce.Room", on_delete=models.CASCADE, related_name="reservations"
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    remind_at = models.DateTimeField(_("提醒时间"), db_index=True)
    reminded_at = models.DateTimeField(_("已提醒"), null=True, blank=True)
    # How the viewer asked to be reminded ("sms", "mp_subscribe", "wechat_oa"; empty: not
    # asked) and when they consented to that one reminder (the page's SMS consent box).
    remind_channel = models.CharField(_("提醒方式"), max_length=16, blank=True, default="")
    remind_consent_at = models.DateTimeField(_("同意提醒时间"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "contact"], name="one_reservation_per_room")
        ]


class Follow(TenantModel):
    streamer = models.ForeignKey(
        "livecommerce.StreamerProfile", on_delete=models.CASCADE, related_name="follows"
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["streamer", "contact"], name="one_follow_per_streamer")
        ]


class InviteCode(TenantModel):
    """A viewer's own invite code (one per viewer per organisation)."""

    contact = models.OneToOneField(
        "crm.Contact", on_delete=models.CASCADE, related_name="invite_code"
    )
    code = models.CharField(max_length=16, unique=True)
    device = models.CharField(max_length=64, blank=True)


class Invite(TenantModel):
    """Who invited whom. A viewer is invited at most once (the first link wins)."""

    inviter = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    invitee = models.OneToOneField(
        "crm.Contact", on_delete=models.CASCADE, related_name="invited_by"
    )
    room = models.ForeignKey(
        "livecommerce.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    device = models.CharField(max_length=64, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    depth = models.PositiveSmallIntegerField(default=1)
    flagged = models.CharField(_("风险"), max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "device"]), models.Index(fields=["org", "ip"])]


class InviteCredit(TenantModel):
    """Credit for every ancestor of an invitee (hop 1 = the direct inviter)."""

    invite = models.ForeignKey(Invite, on_delete=models.CASCADE, related_name="credits")
    ancestor = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    hops = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invite", "ancestor"], name="one_credit_per_ancestor")
        ]


class Replay(TenantModel):
    room = models.OneToOneField(
        "livecommerce.Room", on_delete=models.CASCADE, related_name="replay"
    )
    url = models.CharField(_("回放地址"), max_length=500)
    source = models.CharField(max_length=32, blank=True)
    duration_s = models.PositiveIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)


class MediaCallback(BaseModel):
    """Idempotency record: a replayed media-server callback is processed once."""

    provider = models.CharField(max_length=32)
    key = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "key"], name="one_media_callback")
        ]


class OnlineSample(TenantModel):
    """Online viewers over time for the console chart (sampled by a periodic task)."""

    room = models.ForeignKey(
        "livecommerce.Room", on_delete=models.CASCADE, related_name="online_samples"
    )
    at = models.DateTimeField()
    online = models.PositiveIntegerField()
