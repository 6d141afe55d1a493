"""Viewer sign-in through WeChat: H5 OAuth (official account) and mini-program login.

H5 flow (docs/wechat.md): the viewer page sends the browser to ``/wechat/oauth/start``; we
store a random ``state`` in the viewer's Django session and redirect to WeChat's authorize
page (``snsapi_base`` silently, ``snsapi_userinfo`` when the viewer agreed to share their
profile); WeChat returns to ``/wechat/oauth/callback?code&state``; a state that is not the
one in this browser's session is refused (login CSRF); the code goes back to the page in
the URL fragment and the page exchanges it at ``POST /api/v1/viewer/session``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import requests
from django.http import HttpRequest
from django.utils.translation import gettext as _
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException

from core import links, pii
from core.errors import DomainError, NotFound
from core.models import Organization
from crm.models import Contact, Source
from wechat import crm_bridge
from wechat.client import mp_client, wechat_oauth
from wechat.models import WeChatAccount, WeChatAccountKind

log = logging.getLogger(__name__)

SESSION_KEY = "wechat_oauth"
SCOPES = ("snsapi_base", "snsapi_userinfo")
_GENDERS = {1: "male", 2: "female"}


class WeChatUnavailable(DomainError):
    code = "wechat_unavailable"
    status_code = 503


class WeChatCodeInvalid(DomainError):
    code = "wechat_code_invalid"


@dataclass(frozen=True)
class WeChatLogin:
    contact: Contact
    created: bool
    device: str


def account_for_login(*, org: Organization, kind: str, account_id: int | None = None):
    """The org's account of this kind (the given one, else the oldest active one)."""
    qs = WeChatAccount.objects.for_org(org).filter(kind=kind, is_active=True)
    account = qs.filter(pk=account_id).first() if account_id else qs.order_by("id").first()
    if account is None:
        field = "wechat_code" if kind == WeChatAccountKind.OFFICIAL else "mp_code"
        raise NotFound(_("该组织未配置微信登录"), fields={field: [_("该组织未配置微信登录")]})
    return account


def _device(openid: str) -> str:
    return pii.lookup_hash("device", openid)[:16]


def _source(room_id: int | None, invite: str) -> tuple[str, dict]:
    detail: dict = {}
    if room_id:
        detail["room"] = room_id
    if invite:
        detail["invite"] = invite
    return (Source.INVITE if invite else Source.ROOM if room_id else Source.OTHER), detail


def _profile(info: dict) -> dict:
    profile = {
        "nickname": (info.get("nickname") or "")[:64],
        "province": (info.get("province") or "")[:32],
        "city": (info.get("city") or "")[:32],
        "avatar_url": (info.get("headimgurl") or "")[:200],
    }
    if info.get("sex") in _GENDERS:
        profile["gender"] = _GENDERS[info["sex"]]
    return {k: v for k, v in profile.items() if v}


def _fill_blanks(contact: Contact, profile: dict) -> None:
    """WeChat's profile fills what the contact lacks; it never overwrites what sales edited."""
    changed = []
    for field, value in profile.items():
        current = getattr(contact, field)
        if value and (not current or (field == "gender" and current == "unknown")):
            setattr(contact, field, value)
            changed.append(field)
    if changed:
        contact.save(update_fields=changed)


def wechat_oauth_login(
    *,
    org: Organization,
    code: str,
    account_id: int | None = None,
    room_id: int | None = None,
    invite: str = "",
) -> WeChatLogin:
    """Exchange an H5 OAuth code for the viewer's contact (created on first visit)."""
    account = account_for_login(org=org, kind=WeChatAccountKind.OFFICIAL, account_id=account_id)
    oauth = wechat_oauth(account)
    try:
        token = oauth.fetch_access_token(code)
        info = {}
        if "snsapi_userinfo" in (token.get("scope") or ""):
            info = oauth.get_user_info(token["openid"], token["access_token"])
    except WeChatOAuthException as exc:
        if exc.errcode is None:
            raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
        raise WeChatCodeInvalid(
            _("微信授权已失效，请重新进入"), fields={"wechat_code": [_("授权码无效或已使用")]}
        ) from None
    except requests.RequestException:
        raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
    source, detail = _source(room_id, invite)
    openid = token["openid"]
    contact, created = crm_bridge.contact_for_openid(
        org=org,
        appid=account.appid,
        openid=openid,
        unionid=token.get("unionid") or info.get("unionid") or "",
        source=source,
        source_detail=detail,
        profile=_profile(info),
    )
    if not created and info:
        _fill_blanks(contact, _profile(info))
    device = _device(openid)
    crm_bridge.accept_invite(invitee=contact, code=invite, room_id=room_id, device=device)
    return WeChatLogin(contact=contact, created=created, device=device)


def mp_login(
    *,
    org: Organization,
    code: str,
    account_id: int | None = None,
    room_id: int | None = None,
    invite: str = "",
) -> WeChatLogin:
    """Exchange a mini-program ``wx.login`` code (code2session) for the viewer's contact.

    The session_key is not kept: nothing here decrypts mini-program data."""
    account = account_for_login(org=org, kind=WeChatAccountKind.MINI_PROGRAM, account_id=account_id)
    try:
        session = mp_client(account).wxa.code_to_session(code)
    except WeChatClientException as exc:
        if exc.errcode is None:
            raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
        raise WeChatCodeInvalid(
            _("登录凭证无效，请重新登录"), fields={"mp_code": [_("登录凭证无效或已使用")]}
        ) from None
    except requests.RequestException:
        raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
    source, detail = _source(room_id, invite)
    contact, created = crm_bridge.contact_for_openid(
        org=org,
        appid=account.appid,
        openid=session["openid"],
        unionid=session.get("unionid") or "",
        source=source,
        source_detail=detail,
    )
    device = _device(session["openid"])
    crm_bridge.accept_invite(invitee=contact, code=invite, room_id=room_id, device=device)
    return WeChatLogin(contact=contact, created=created, device=device)


def viewer_sign_in(
    *,
    org: Organization,
    kind: str,
    code: str,
    account_id: int | None = None,
    room_id: int | None = None,
    invite: str = "",
) -> WeChatLogin:
    """``livecommerce.services.viewers.viewer_wechat_sign_in``: an H5 OAuth code
    (``kind="wechat_code"``) or a mini-program code (``"mp_code"``) to the viewer's contact."""
    login = wechat_oauth_login if kind == "wechat_code" else mp_login
    return login(org=org, code=code, account_id=account_id, room_id=room_id, invite=invite)


# --- H5 OAuth redirect flow -----------------------------------------------------------------


def safe_next(next_url: str) -> str:
    """Only our own paths: an open redirect would hand the OAuth code to someone else."""
    parts = urlsplit(next_url or "/")
    if parts.scheme or parts.netloc or not (parts.path or "/").startswith("/"):
        return "/"
    if next_url.startswith("//") or "\\" in next_url:
        return "/"
    return next_url.split("#", 1)[0] or "/"


def oauth_redirect_uri(*, request: HttpRequest | None = None) -> str:
    """Where WeChat sends the browser back: the address the viewer is on, so the session
    cookie set by oauth_start comes back with it."""
    return links.absolute_reverse("wechat-oauth-callback", request=request)


def wechat_oauth_begin(
    *,
    session,
    org: Organization,
    scope: str,
    next_url: str,
    account_id: int | None = None,
    request: HttpRequest | None = None,
) -> str:
    """Remember a fresh state in the browser's session; return WeChat's authorize URL
    (its redirect_uri on the address of ``request``)."""
    if scope not in SCOPES:
        raise DomainError(_("授权范围无效"), fields={"scope": [_("授权范围无效")]})
    account = account_for_login(org=org, kind=WeChatAccountKind.OFFICIAL, account_id=account_id)
    state = secrets.token_urlsafe(16)
    session[SESSION_KEY] = {
        "state": state,
        "org": org.slug,
        "account": account.pk,
        "next": safe_next(next_url),
    }
    oauth = wechat_oauth(
        account, redirect_uri=oauth_redirect_uri(request=request), scope=scope, state=state
    )
    return oauth.authorize_url


def wechat_oauth_finish(*, session, code: str, state: str) -> str:
    """Check ``state`` against this browser's session (single use) and return the page URL
    that receives the code in its fragment. Raises DomainError for a foreign state."""
    pending = session.pop(SESSION_KEY, None)
    if not pending or not state or not secrets.compare_digest(pending["state"], state):
        raise DomainError(
            _("授权已过期，请重新进入页面"),
            code="oauth_state_mismatch",
            fields={"state": ["mismatch"]},
        )
    if not code:  # the viewer refused on WeChat's page
        return pending["next"]
    fragment = urlencode(
        {"wechat_code": code, "org": pending["org"], "wechat_account": pending["account"]},
        quote_via=quote,
    )
    return f"{pending['next']}#{fragment}"
