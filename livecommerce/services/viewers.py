"""Viewer sessions: a viewer of the rooms signs in as a guest or with WeChat.

Viewers are not Django users: a session is a signed token bound to the organisation and the
viewer's contact (``core.tokens``). A WeChat code is exchanged by the wechat app, which sits
above the rooms (docs/architecture.md) and so registers itself here as
``viewer_wechat_sign_in`` (``WechatConfig.ready``) instead of being imported.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _

from core.errors import DomainError, Forbidden, NotFound
from core.hooks import Hook
from core.models import Organization
from core.tokens import issue_viewer_token
from crm.services.contacts import contact_create_guest
from livecommerce.services.invites import invite_accept

# fn(*, org, kind, code, account_id, room_id, invite) -> an object with ``contact`` and
# ``device``; ``kind`` is "wechat_code" (H5 OAuth) or "mp_code" (mini-program wx.login).
# Raises the wechat app's DomainErrors (code invalid, WeChat unavailable).
viewer_wechat_sign_in: Hook[Callable[..., Any]] = Hook(
    "livecommerce.viewer_wechat_sign_in", single=True
)


def viewer_session_start(
    *,
    org_slug: str,
    room_id: int | None = None,
    guest_name: str = "",
    guest_id: str = "",
    wechat_code: str = "",
    mp_code: str = "",
    invite: str = "",
    wechat_account: int | None = None,
    ip: str = "",
) -> dict:
    """Start a viewer session and return ``{"token", "contact_id", "guest_id", "nickname"}``.

    Guests are keyed by a random client-held ``guest_id`` so a reload keeps the same contact.
    ``wechat_code`` (H5 OAuth) and ``mp_code`` (mini-program ``wx.login``) are exchanged with
    WeChat by the ``viewer_wechat_sign_in`` hook (``wechat.login``); ``wechat_account`` picks
    one of several accounts.
    """
    org = Organization.objects.filter(slug=org_slug, is_active=True).first()
    if org is None:
        raise NotFound(_("组织不存在"), fields={"org": [_("组织不存在")]})
    if wechat_code or mp_code:
        result = viewer_wechat_sign_in.get()(
            org=org,
            kind="wechat_code" if wechat_code else "mp_code",
            code=wechat_code or mp_code,
            account_id=wechat_account,
            room_id=room_id,
            invite=invite,
        )
        token = issue_viewer_token(
            org_id=org.pk,
            contact_id=result.contact.pk,
            device=result.device,
            room_id=room_id,
            nickname=result.contact.nickname,
        )
        return {
            "token": token,
            "contact_id": result.contact.pk,
            "guest_id": "",
            "nickname": result.contact.nickname,
        }
    if not org.allow_guest_viewers:
        raise Forbidden(_("该组织不允许游客观看"), code="guest_not_allowed")
    if not guest_name:
        raise DomainError(_("请填写昵称"), fields={"guest_name": [_("请填写昵称")]})
    guest_id = guest_id or secrets.token_urlsafe(18)
    source_detail = {"room": room_id} if room_id else {}
    if invite:
        source_detail["invite"] = invite
    contact, _created = contact_create_guest(
        org=org, guest_id=guest_id, nickname=guest_name, source_detail=source_detail
    )
    if invite:
        # The share graph (who invited whom, fraud signals) lives with the live rooms.
        invite_accept(invitee=contact, code=invite, room_id=room_id, device=guest_id[:16], ip=ip)
    token = issue_viewer_token(
        org_id=org.pk,
        contact_id=contact.pk,
        device=guest_id[:16],
        room_id=room_id,
        nickname=contact.nickname,
    )
    return {
        "token": token,
        "contact_id": contact.pk,
        "guest_id": guest_id,
        "nickname": contact.nickname,
    }
