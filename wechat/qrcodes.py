"""Parametric QR codes (带参数二维码) for rooms, inviters and campaigns, cached per scene.

A scan of one of these by a new follower arrives as ``subscribe`` with
``EventKey = qrscene_<scene>`` (``SCAN`` with ``<scene>`` for existing followers); the
callback turns the scene into the lead's source — except ``staff-bind:<code>``, a staff
member binding their own WeChat (no lead, see ``campaigns.services.staff_binding``).
"""

from __future__ import annotations

import re
from datetime import timedelta

import requests
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from wechatpy.exceptions import WeChatClientException

from core.errors import DomainError
from wechat.client import wechat_client
from wechat.login import WeChatUnavailable
from wechat.models import QrKind, WeChatAccount, WeChatAccountKind, WeChatQrScene

SCENE_RE = re.compile(r"^(room:\d{1,18}|campaign:\d{1,18}|invite:[A-Za-z0-9_-]{1,40})$")
# A staff member's binding code (WeChat caps scene strings at 64 characters).
STAFF_BIND_PREFIX = "staff-bind:"
STAFF_BIND_SCENE_RE = re.compile(r"^staff-bind:[A-Za-z0-9_-]{16,48}$")
# WeChat's maximum for temporary codes is 30 days.
TEMPORARY_SECONDS = 30 * 24 * 3600
# Re-create a temporary code this long before it expires, so a poster never shows a dead one.
RENEW_MARGIN = timedelta(days=1)


def qr_scene_get_or_create(
    *, account: WeChatAccount, scene: str, permanent: bool = False
) -> WeChatQrScene:
    """The cached QR code of a scene, created at WeChat when missing or about to expire."""
    if not SCENE_RE.match(scene):
        raise DomainError(
            _("场景值格式应为 room:ID、invite:CODE 或 campaign:ID"),
            fields={"scene": [_("场景值格式应为 room:ID、invite:CODE 或 campaign:ID")]},
        )
    return _scene_get_or_create(
        account=account,
        scene=scene,
        kind=QrKind.PERMANENT if permanent else QrKind.TEMPORARY,
        expire_seconds=TEMPORARY_SECONDS,
    )


def qr_staff_bind_scene_create(
    *, account: WeChatAccount, scene: str, expire_seconds: int
) -> WeChatQrScene:
    """A short-lived temporary code for a staff member's WeChat binding
    (``campaigns.services.staff_binding``). Not reachable through the public QR API: only
    that service makes ``staff-bind:`` scenes, each one for a single one-time code."""
    if not STAFF_BIND_SCENE_RE.match(scene):
        raise ValueError("not a staff-bind scene")
    return _scene_get_or_create(
        account=account, scene=scene, kind=QrKind.TEMPORARY, expire_seconds=expire_seconds
    )


def _scene_get_or_create(
    *, account: WeChatAccount, scene: str, kind: str, expire_seconds: int
) -> WeChatQrScene:
    now = timezone.now()
    qs = WeChatQrScene.objects.for_org(account.org_id).filter(
        account=account, scene=scene, kind=kind
    )
    cached = qs.first()
    if cached and (cached.expires_at is None or cached.expires_at > now + RENEW_MARGIN):
        return cached
    if kind == QrKind.PERMANENT:
        data = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
    else:
        data = {
            "expire_seconds": expire_seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
    try:
        result = wechat_client(account).qrcode.create(data)
    except (WeChatClientException, requests.RequestException):
        raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
    expires_at = (
        now + timedelta(seconds=int(result["expire_seconds"]))
        if result.get("expire_seconds")
        else None
    )
    values = {"ticket": result["ticket"], "url": result["url"], "expires_at": expires_at}
    if cached:
        qs.update(**values)
        cached.refresh_from_db()
        return cached
    try:
        with transaction.atomic():
            return qs.create(
                org_id=account.org_id, account=account, scene=scene, kind=kind, **values
            )
    except IntegrityError:  # created concurrently: theirs is as good as ours
        return qs.get()


def qr_follow_scene_for_org(*, org_id: int, scene: str) -> WeChatQrScene | None:
    """The cached follow QR of ``scene`` on the org's oldest active official account, or
    None when the org has none (callers then keep their plain link). WeChat failures raise
    ``WeChatUnavailable``."""
    account = (
        WeChatAccount.objects.for_org(org_id)
        .filter(kind=WeChatAccountKind.OFFICIAL, is_active=True)
        .order_by("id")
        .first()
    )
    if account is None:
        return None
    return qr_scene_get_or_create(account=account, scene=scene)


def follow_qr_url(*, org_id: int, scene: str) -> str | None:
    """``livecommerce.services.follow_qr.follow_qr_url``: the URL of the org's follow QR of
    ``scene``, None when the org has no official account."""
    row = qr_follow_scene_for_org(org_id=org_id, scene=scene)
    return row.url if row else None
