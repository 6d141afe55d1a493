"""Mini-program subscribe-message consents (一次性订阅消息) and phone binding through
WeChat's getPhoneNumber button.

``wx.requestSubscribeMessage`` reports ``{templateId: "accept" | "reject" | "ban" |
"filter"}``; each "accept" allows exactly one send of that template to that user. A sender
calls ``mp_consent_use`` right before sending: it flips one unused row to used atomically
and answers False when there is none (then the send must not happen).
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from wechatpy.exceptions import WeChatClientException

from core import ratelimit
from core.errors import DomainError, RateLimited
from core.phones import PhoneInvalid, normalize_phone
from crm.models import Contact, IdentityKind
from wechat import crm_bridge
from wechat.client import mp_client
from wechat.login import WeChatUnavailable
from wechat.models import ConsentStatus, MpSubscribeConsent, WeChatAccount

ACCEPT = "accept"


def mp_subscriptions_record(
    *, account: WeChatAccount, contact: Contact, results: dict[str, str]
) -> dict[str, int]:
    """Record one unused consent per accepted template the account owns; returns unused counts
    per template (0 for a template it does not own: nothing could ever be sent with it)."""
    owned = mp_templates_owned(account=account)
    accepted = [
        tmpl
        for tmpl, choice in results.items()
        if choice == ACCEPT and (owned is None or tmpl in owned)
    ]
    with transaction.atomic():
        MpSubscribeConsent.objects.for_org(account.org_id).bulk_create(
            [
                MpSubscribeConsent(
                    org_id=account.org_id, account=account, contact=contact, template_id=tmpl
                )
                for tmpl in accepted
            ]
        )
    return {tmpl: mp_consent_unused_count(account=account, contact=contact, template_id=tmpl)
            for tmpl in results}  # fmt: skip


_TEMPLATES_TTL = 600


def mp_templates_owned(*, account: WeChatAccount) -> set[str] | None:
    """The subscribe-message templates in the account's own list (我的模板, through
    ``wxaapi/newtmpl/gettemplate``), cached ten minutes; None when WeChat cannot say (then
    consents are recorded as reported: a viewer's yes is not lost to an outage)."""
    key = f"{settings.WECHAT_CACHE_PREFIX}:mptemplates:{account.appid}"
    cached = cache.get(key)
    if cached is not None:
        return set(cached)
    client = mp_client(account)
    try:
        answer = client.get("wxaapi/newtmpl/gettemplate", api_base_url=client.base)
    except (WeChatClientException, requests.RequestException) as exc:
        logging.getLogger(__name__).warning("gettemplate failed for %s: %s", account.appid, exc)
        return None
    owned = sorted(str(t.get("priTmplId", "")) for t in answer.get("data") or [])
    cache.set(key, owned, _TEMPLATES_TTL)
    return set(owned)


def mp_consent_unused_count(*, account: WeChatAccount, contact: Contact, template_id: str) -> int:
    return (
        MpSubscribeConsent.objects.for_org(account.org_id)
        .filter(account=account, contact=contact, template_id=template_id, status="unused")
        .count()
    )


def mp_consent_use(*, account: WeChatAccount, contact: Contact, template_id: str) -> bool:
    """Consume one unused consent for a send. False when the user holds none."""
    qs = MpSubscribeConsent.objects.for_org(account.org_id)
    while True:
        row = (
            qs.filter(
                account=account,
                contact=contact,
                template_id=template_id,
                status=ConsentStatus.UNUSED,
            )
            .order_by("id")
            .values_list("pk", flat=True)
            .first()
        )
        if row is None:
            return False
        # Conditional update: two concurrent senders cannot both consume the same row.
        if qs.filter(pk=row, status=ConsentStatus.UNUSED).update(
            status=ConsentStatus.USED, used_at=timezone.now()
        ):
            return True


class PhoneCodeInvalid(DomainError):
    code = "phone_code_invalid"


def mp_phone_bind(*, account: WeChatAccount, contact: Contact, code: str, ip: str) -> Contact:
    """Bind the phone WeChat vouches for to the viewer ``contact``: ``code`` is the one-time
    code of ``<button open-type="getPhoneNumber">``, exchanged server-side
    (phonenumber.getPhoneNumber — the number never passes through the client). Returns the
    (possibly One-ID-merged) contact. Mainland mobiles only, like SMS binding."""
    if not ratelimit.hit("otp_verify_ip", f"{contact.org_id}:{ip}"):
        raise RateLimited(_("尝试太频繁，请稍后再试"))
    invalid = PhoneCodeInvalid(
        _("手机号授权已失效，请重新点击绑定"), fields={"code": [_("手机号授权已失效")]}
    )
    client = mp_client(account)
    try:
        # wechatpy 1.8.18 has no method for it: its generic post, on the API's root (the
        # client's default base is cgi-bin/).
        answer = client.post(
            "wxa/business/getuserphonenumber", data={"code": code}, api_base_url=client.base
        )
    except WeChatClientException as exc:
        if exc.errcode is None:
            raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
        raise invalid from None
    except requests.RequestException:
        raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
    info = answer.get("phone_info") or {}
    if str(info.get("countryCode", "86")) != "86" or not info.get("purePhoneNumber"):
        raise PhoneInvalid(_("仅支持中国大陆手机号"), fields={"code": [_("仅支持中国大陆手机号")]})
    phone = normalize_phone(str(info["purePhoneNumber"]))
    with transaction.atomic():
        return crm_bridge.identity_attach(contact=contact, kind=IdentityKind.PHONE, value=phone)


class MpCodeUnavailable(DomainError):
    code = "mp_code_unavailable"
    status_code = 409


# The page a scanned mini-program code opens (miniprogram/pages/index decodes the scene).
MP_ENTRY_PAGE = "pages/index/index"
_MP_CODE_TTL = 7 * 24 * 3600


def mp_invite_scene(*, room_id: int, invite_code: str, clip_id: int | None = None) -> str:
    """``r=<room>&i=<invite>[&c=<clip>]`` — WeChat allows 32 characters in a code's scene
    (miniprogram/utils/scene.js reads it back)."""
    scene = f"r={room_id}&i={invite_code}" + (f"&c={clip_id}" if clip_id else "")
    if len(scene) > 32:
        raise MpCodeUnavailable(_("小程序码参数过长"))
    return scene


def mp_code_png(*, account: WeChatAccount, scene: str) -> bytes:
    """The mini-program code (wxacode.getUnlimited) opening the entry page with ``scene``.
    Cached a week per scene: the same viewer's code for the same room never changes."""
    key = f"{settings.WECHAT_CACHE_PREFIX}:wxacode:{account.appid}:{scene}"
    cached = cache.get(key)
    if cached:
        return cached
    try:
        answer = mp_client(account).wxa.get_wxa_code_unlimited(scene, page=MP_ENTRY_PAGE, width=430)
    except WeChatClientException as exc:
        if exc.errcode is None:
            raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
        # e.g. 41030: the entry page is not in the published version yet.
        raise MpCodeUnavailable(_("小程序码暂不可用（小程序尚未发布？）")) from None
    except requests.RequestException:
        raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
    png = getattr(answer, "content", b"")
    if not png.startswith(b"\x89PNG"):
        raise MpCodeUnavailable(_("小程序码暂不可用（小程序尚未发布？）"))
    cache.set(key, png, _MP_CODE_TTL)
    return png
