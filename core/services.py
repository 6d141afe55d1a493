"""Staff sign-in and viewer sessions."""

from __future__ import annotations

import secrets

from django.contrib.auth import authenticate
from django.db.models import F
from django.utils.translation import gettext as _

from core.errors import DomainError, Forbidden, NotFound
from core.models import Membership, Organization
from core.tokens import issue_staff_token, issue_viewer_token


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = 400


def staff_sign_in(*, username: str, password: str) -> tuple[str, Membership]:
    """A signed staff token for valid credentials of a user with a membership."""
    user = authenticate(username=username, password=password)
    membership = getattr(user, "membership", None) if user else None
    if membership is None or not membership.org.is_active:
        raise InvalidCredentials(_("用户名或密码错误"))
    return issue_staff_token(membership=membership), membership


def staff_sign_out(*, membership: Membership) -> None:
    """Revoke every token the user holds."""
    Membership.objects.filter(pk=membership.pk).update(token_generation=F("token_generation") + 1)


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
    WeChat (``wechat.login``); ``wechat_account`` picks one of several accounts.
    """
    from crm.services.contacts import contact_create_guest

    org = Organization.objects.filter(slug=org_slug, is_active=True).first()
    if org is None:
        raise NotFound(_("组织不存在"), fields={"org": [_("组织不存在")]})
    if wechat_code or mp_code:
        from wechat.login import mp_login, wechat_oauth_login

        login = wechat_oauth_login if wechat_code else mp_login
        result = login(
            org=org,
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
        from livecommerce.services.invites import invite_accept

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
