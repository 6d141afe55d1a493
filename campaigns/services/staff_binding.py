"""扫码绑定微信: a staff member binds their own WeChat (openid) for owner notifications.

Nobody knows their own openid, so the workspace shows a temporary parametric QR code of the
org's official account with the scene ``staff-bind:<one-time code>``. WeChat pushes the scan
to our callback (``subscribe_scan`` for a new follower, ``SCAN`` for an existing one) with
the scanner's openid, and ``staff_wechat_bind_scan`` stores it on the member's
``StaffContact`` exactly as ``PUT /api/v1/staff-contact`` would (encrypted + keyed hash).

The code is random (``secrets``), stored only as a keyed hash, single use, valid for
``BIND_TTL``, and tied to one member, organisation and official account: a used, expired or
unknown code — or one of another organisation, pushed to this account — binds nothing. A
staff scene never creates a CRM lead or contact. The callback itself is signed, so a forged
push is refused before this code runs.
"""

from __future__ import annotations

import base64
import logging
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import StaffContact, StaffWeChatBind
from campaigns.services.owner_notify import staff_contact_set
from core import pii, ratelimit
from core.errors import NotFound
from core.models import AuditLog, Membership
from core.qr import qr_png
from wechat.models import WeChatAccount, WeChatAccountKind, WeChatQrScene
from wechat.qrcodes import (
    STAFF_BIND_PREFIX,
    STAFF_BIND_SCENE_RE,
    qr_staff_bind_scene_create,
)
from wechat.windows import openid_hash

log = logging.getLogger(__name__)

BIND_TTL = timedelta(minutes=10)
# Each start asks WeChat for a QR code: a member needs a handful, not hundreds.
START_RULE = "20/3600"


class BindStatus:
    PENDING = "pending"
    BOUND = "bound"
    EXPIRED = "expired"


# The answer's ``status`` values (also named in the OpenAPI schema: SPECTACULAR_SETTINGS).
BIND_STATUSES = [BindStatus.PENDING, BindStatus.BOUND, BindStatus.EXPIRED]


def _code_hash(code: str) -> str:
    return pii.lookup_hash("staff-bind", code)


def _official_account(*, org_id: int, account_id: int | None) -> WeChatAccount:
    qs = WeChatAccount.objects.for_org(org_id).filter(
        kind=WeChatAccountKind.OFFICIAL, is_active=True
    )
    account = qs.filter(pk=account_id).first() if account_id else qs.order_by("id").first()
    if account is None:
        message = _("该组织未配置公众号")
        raise NotFound(message, fields={"wechat_account": [message]})
    return account


def _audit(*, org_id: int, user, action: str, row: StaffContact | None, detail: dict, ip=None):
    AuditLog.objects.for_org(org_id).create(
        org_id=org_id,
        actor=user,
        action=action,
        target_type="staff_contact",
        target_id=str(row.pk) if row else "",
        detail=detail,
        ip=ip,
    )


def staff_wechat_bind_start(
    *, org_id: int, user, account_id: int | None = None
) -> tuple[StaffWeChatBind, str]:
    """A new one-time binding code for ``user`` and its QR code. Returns the row and the QR
    code as a PNG data URL (shown to this member only: whoever scans it is bound).

    Voids the member's earlier unused codes. Calls WeChat (``qrcode/create``) outside any
    transaction; raises ``WeChatUnavailable`` (503) when WeChat cannot be reached, NotFound
    (naming ``wechat_account``) without an active official account, RateLimited."""
    account = _official_account(org_id=org_id, account_id=account_id)
    ratelimit.enforce("staff_wechat_bind", f"{org_id}:{user.pk}", rule=START_RULE)
    code = secrets.token_urlsafe(24)  # 32 characters: the scene stays far below WeChat's 64
    qr = qr_staff_bind_scene_create(
        account=account,
        scene=STAFF_BIND_PREFIX + code,
        expire_seconds=int(BIND_TTL.total_seconds()),
    )
    with transaction.atomic():
        _void_unused(org_id=org_id, user=user)
        row = StaffWeChatBind.objects.for_org(org_id).create(
            org_id=org_id,
            user=user,
            account=account,
            code_hash=_code_hash(code),
            qr=qr,
            expires_at=timezone.now() + BIND_TTL,
        )
    image = "data:image/png;base64," + base64.b64encode(qr_png(qr.url)).decode()
    return row, image


def _void_unused(*, org_id: int, user) -> None:
    earlier = StaffWeChatBind.objects.for_org(org_id).filter(user=user, used_at__isnull=True)
    qr_ids = [pk for pk in earlier.values_list("qr_id", flat=True) if pk]
    earlier.delete()
    WeChatQrScene.objects.for_org(org_id).filter(pk__in=qr_ids).delete()


def staff_wechat_bind_status(*, org_id: int, user, bind_id: int) -> tuple[str, StaffWeChatBind]:
    """(status, row) of one of ``user``'s binding codes; another member's is NotFound."""
    row = StaffWeChatBind.objects.for_org(org_id).filter(user=user, pk=bind_id).first()
    if row is None:
        raise NotFound()
    if row.used_at is not None:
        return BindStatus.BOUND, row
    if row.expires_at <= timezone.now():
        return BindStatus.EXPIRED, row
    return BindStatus.PENDING, row


def staff_wechat_bind_scan(*, account: WeChatAccount, openid: str, scene: str) -> bool:
    """A scan of a ``staff-bind:`` scene pushed to ``account``'s callback (already verified).
    Runs inside the callback's transaction. Binds ``openid`` to the code's member and
    returns True, or does nothing and returns False (unknown, used, expired, other org)."""
    code = scene[len(STAFF_BIND_PREFIX) :]
    if not STAFF_BIND_SCENE_RE.match(scene):
        return False
    codes = StaffWeChatBind.objects.for_org(account.org_id).filter(
        account=account, code_hash=_code_hash(code)
    )
    bind = codes.select_related("user").first()
    if bind is None or not _still_a_member(bind.user, account.org_id):
        log.info("staff-bind scan with an unknown code (account %s)", account.pk)
        return False
    now = timezone.now()
    # One conditional UPDATE consumes the code: two pushes racing cannot both bind.
    taken = codes.filter(used_at__isnull=True, expires_at__gt=now).update(
        used_at=now, openid_hash=openid_hash(openid)
    )
    if not taken:
        log.info("staff-bind scan with a used or expired code (account %s)", account.pk)
        return False
    row = staff_contact_set(
        org_id=account.org_id, user=bind.user, wechat_account=account, openid=openid
    )
    _audit(
        org_id=account.org_id,
        user=bind.user,
        action="staff_contact.wechat_bind",
        row=row,
        detail={"account": account.pk, "via": "qr_scan", "bind": bind.pk},
    )
    # The image is no longer needed (and its URL was the only way to use the code).
    if bind.qr_id:
        WeChatQrScene.objects.for_org(account.org_id).filter(pk=bind.qr_id).delete()
    return True


def _still_a_member(user, org_id: int) -> bool:
    return (
        user.is_active
        and Membership.objects.filter(user=user, org_id=org_id, org__is_active=True).exists()
    )


def staff_bind_reply_text(*, account: WeChatAccount, openid: str, scene: str) -> str:
    """The text answered to the scanner. Read-only: a replayed push gets the same answer."""
    code = scene[len(STAFF_BIND_PREFIX) :]
    bind = (
        StaffWeChatBind.objects.for_org(account.org_id)
        .filter(account=account, code_hash=_code_hash(code))
        .first()
        if STAFF_BIND_SCENE_RE.match(scene)
        else None
    )
    if bind and bind.used_at and bind.openid_hash == openid_hash(openid):
        return _(
            "已绑定：高意向线索会通过本公众号的模板消息通知你。可在工作台「我的通知方式」解除绑定。"
        )
    return _("绑定二维码已失效或已被使用，请在工作台「我的通知方式」重新获取。")


def staff_wechat_unbind(*, org_id: int, user, ip: str | None = None) -> StaffContact:
    """Clear ``user``'s WeChat contact point (the phone stays). Audited."""
    row = staff_contact_set(org_id=org_id, user=user, openid="")
    _audit(
        org_id=org_id,
        user=user,
        action="staff_contact.wechat_unbind",
        row=row,
        detail={},
        ip=ip,
    )
    return row


def staff_wechat_bind_sweep(*, before) -> int:
    """Delete codes that expired before ``before`` (and their QR rows)."""
    old = StaffWeChatBind.unscoped.filter(expires_at__lt=before)
    qr_ids = [pk for pk in old.values_list("qr_id", flat=True) if pk]
    deleted, _ = old.delete()
    WeChatQrScene.unscoped.filter(pk__in=qr_ids).delete()
    return deleted
