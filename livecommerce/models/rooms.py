"""Streamers, rooms and the product catalog."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TenantModel

__all__ = ["StreamerProfile", "RoomStatus", "new_stream_key", "Room", "Product", "RoomProduct"]


class StreamerProfile(TenantModel):
    """The public face of a streamer (主播主页). Linked to the staff user who hosts."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="streamer_profile",
        verbose_name=_("账号"),
    )
    name = models.CharField(_("主播名"), max_length=64)
    avatar = models.ImageField(_("头像"), upload_to="avatars/", blank=True)
    bio = models.TextField(_("简介"), blank=True, max_length=2000)
    followers_count = models.PositiveIntegerField(_("粉丝数"), default=0)

    class Meta:
        verbose_name = _("主播")
        verbose_name_plural = _("主播")

    def __str__(self) -> str:
        return self.name


class RoomStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("预告")
    LIVE = "live", _("直播中")
    ENDED = "ended", _("已结束")


def new_stream_key() -> str:
    return secrets.token_urlsafe(18)


class Room(TenantModel):
    streamer = models.ForeignKey(
        StreamerProfile, on_delete=models.PROTECT, related_name="rooms", verbose_name=_("主播")
    )
    title = models.CharField(_("标题"), max_length=100)
    description = models.TextField(_("介绍"), blank=True, max_length=5000)
    cover = models.ImageField(_("封面"), upload_to="covers/", blank=True)
    status = models.CharField(
        _("状态"), max_length=12, choices=RoomStatus.choices, default=RoomStatus.SCHEDULED
    )
    scheduled_start = models.DateTimeField(_("计划开播时间"))
    started_at = models.DateTimeField(_("开播时间"), null=True, blank=True)
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    stream_key = models.CharField(_("推流密钥"), max_length=64, unique=True, default=new_stream_key)

    class Meta:
        verbose_name = _("直播间")
        verbose_name_plural = _("直播间")
        indexes = [models.Index(fields=["org", "status", "scheduled_start"])]

    def __str__(self) -> str:
        return self.title


class Product(TenantModel):
    name = models.CharField(_("商品名"), max_length=100)
    description = models.TextField(_("描述"), blank=True, max_length=5000)
    price = models.DecimalField(
        _("售价"), max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )
    original_price = models.DecimalField(
        _("原价"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    image = models.ImageField(_("图片"), upload_to="products/", blank=True)
    stock = models.PositiveIntegerField(_("库存"), default=0)
    link_url = models.URLField(_("商城链接"), blank=True)
    mp_path = models.CharField(_("小程序路径"), max_length=200, blank=True)
    is_active = models.BooleanField(_("上架"), default=True)

    class Meta:
        verbose_name = _("商品")
        verbose_name_plural = _("商品")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="product_price_non_negative"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RoomProduct(TenantModel):
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="room_products", verbose_name=_("直播间")
    )
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("商品")
    )
    position = models.PositiveIntegerField(_("排序"), default=0)
    is_pinned = models.BooleanField(_("讲解中"), default=False)

    class Meta:
        verbose_name = _("直播间商品")
        verbose_name_plural = _("直播间商品")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "product"], name="uniq_product_per_room"),
            # "Now explaining" is one product at a time.
            models.UniqueConstraint(
                fields=["room"], condition=models.Q(is_pinned=True), name="one_pinned_per_room"
            ),
        ]
