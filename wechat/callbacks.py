"""Official-account callbacks: verify, parse safely, process each push once, reply fast.

Order of work for a POST (each step refuses before the next one runs):
1. signature (``wechatpy.utils.check_signature``) and timestamp skew → 403;
2. body size cap → 413;
3. XML without a DTD (defusedxml, ``forbid_dtd``): XXE and entity bombs are refused without
   expanding anything → 400;
4. safe mode: ``WeChatCrypto.decrypt_message`` checks ``msg_signature`` and decrypts; the
   inner XML goes through step 3 again;
5. ``wechatpy.parse_message`` → ``wechat_message_handle`` in one transaction whose first
   write is the dedupe row, so a push WeChat retries (it does, three times, when it gets no
   answer within 5 seconds) is processed once even when the copies arrive together.

Only database writes happen inside the request; anything that calls WeChat back (user
profile / unionid) is a background task, so the answer leaves well inside WeChat's 5 s.
Whatever happens after the signature check, WeChat gets ``success`` or a valid reply.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from core import links, pii
from core.tasks import enqueue
from crm.models import Source
from livecommerce.models import Room, RoomStatus
from wechat import crm_bridge, extensions
from wechat.models import (
    KeywordAction,
    KeywordMatch,
    WeChatAccount,
    WeChatFollower,
    WeChatInboundMessage,
    WeChatKeywordReply,
    WeChatQrScene,
    WindowOpener,
)
from wechat.qrcodes import STAFF_BIND_PREFIX
from wechat.tasks import wechat_follower_enrich
from wechat.windows import openid_hash, service_window_touch

log = logging.getLogger(__name__)

SUCCESS = "success"
# WeChat signs a push with a timestamp; older ones are replays of captured requests.
MAX_SKEW_SECONDS = 300


class CallbackRefused(Exception):
    """The request is not a genuine, well-formed WeChat push. ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SignedQuery:
    signature: str
    timestamp: str
    nonce: str
    msg_signature: str = ""
    encrypt_type: str = ""


def verify_signature(*, account: WeChatAccount, query: SignedQuery) -> None:
    """Raise CallbackRefused(403) unless the query is signed with the account's token."""
    if not (account.token and query.signature and query.timestamp and query.nonce):
        raise CallbackRefused(403, "missing signature")
    try:
        check_signature(account.token, query.signature, query.timestamp, query.nonce)
    except InvalidSignatureException:
        raise CallbackRefused(403, "bad signature") from None


def verify_fresh(*, account: WeChatAccount, query: SignedQuery, body: bytes) -> None:
    """Refuse stale timestamps, and a captured (signature, nonce) re-used with another body.

    In plain mode WeChat's signature covers token + timestamp + nonce only, not the body;
    binding each nonce to the first body seen with it closes that gap for the skew window.
    WeChat's own retries resend the same body with the same nonce, which stays accepted."""
    try:
        stamp = int(query.timestamp)
    except ValueError:
        raise CallbackRefused(403, "bad timestamp") from None
    if abs(time.time() - stamp) > MAX_SKEW_SECONDS:
        raise CallbackRefused(403, "stale timestamp")
    digest = pii.lookup_hash("wechat-body", body.decode("utf-8", "replace"))
    key = f"{settings.WECHAT_CACHE_PREFIX}:nonce:{account.pk}:{query.nonce}:{query.timestamp}"
    if not cache.add(key, digest, timeout=MAX_SKEW_SECONDS * 2) and cache.get(key) != digest:
        raise CallbackRefused(403, "nonce reused with another body")


def _refuse_unsafe_xml(raw: bytes | str) -> None:
    """Any DTD (hence any entity declaration or external reference) is refused unparsed."""
    try:
        SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise CallbackRefused(400, f"xml refused: {type(exc).__name__}") from None


def decode_push(*, account: WeChatAccount, query: SignedQuery, body: bytes):
    """Checked bytes → a wechatpy message. Raises CallbackRefused."""
    if len(body) > settings.WECHAT_CALLBACK_MAX_BYTES:
        raise CallbackRefused(413, "body too large")
    _refuse_unsafe_xml(body)
    xml = body
    if account.encrypt_mode == "safe" or query.encrypt_type == "aes":
        if not account.aes_key():
            raise CallbackRefused(403, "safe mode without an AES key")
        try:
            xml = crypto_for(account).decrypt_message(
                body, query.msg_signature, query.timestamp, query.nonce
            )
        except InvalidSignatureException:
            raise CallbackRefused(403, "bad msg_signature") from None
        except Exception:  # noqa: BLE001 - wechatpy raises several types for garbage
            raise CallbackRefused(400, "cannot decrypt") from None
        _refuse_unsafe_xml(xml)
    try:
        return parse_message(xml)
    except Exception:  # noqa: BLE001 - malformed but DTD-free XML
        raise CallbackRefused(400, "cannot parse") from None


def crypto_for(account: WeChatAccount) -> WeChatCrypto:
    return WeChatCrypto(account.token, account.aes_key(), account.appid)


def encode_reply(*, account: WeChatAccount, query: SignedQuery, reply_xml: str) -> str:
    """Encrypt a reply in safe mode; plain mode sends it as is."""
    if account.encrypt_mode == "safe" or query.encrypt_type == "aes":
        return crypto_for(account).encrypt_message(reply_xml, query.nonce, query.timestamp)
    return reply_xml


# --- processing ---------------------------------------------------------------------------


def dedupe_key(message) -> str:
    """MsgId for messages; FromUserName + CreateTime + event for events (WeChat's advice).
    Hashed: the raw key would carry the openid in clear."""
    msg_id = getattr(message, "id", None)
    if msg_id:
        raw = f"msg:{msg_id}"
    else:
        raw = f"evt:{message.source}:{message._data.get('CreateTime')}:{message_kind(message)}"
    return pii.lookup_hash("wechat-push", raw)[:48]


def parse_scene(scene: str) -> tuple[str, dict, int | None]:
    """A scene string → (contact source, source_detail, room id)."""
    kind, _sep, value = (scene or "").partition(":")
    if kind == "room" and value.isdigit():
        return Source.ROOM, {"room": int(value), "scene": scene}, int(value)
    if kind == "invite" and value:
        return Source.INVITE, {"invite": value[:64], "scene": scene}, None
    if kind == "campaign" and value.isdigit():
        return Source.CAMPAIGN, {"campaign": int(value), "scene": scene}, None
    if scene:
        return Source.QR, {"scene": scene[:64]}, None
    return Source.OTHER, {}, None


def _occurred_at(message) -> datetime:
    created = getattr(message, "create_time", None)
    if isinstance(created, datetime):
        return created if created.tzinfo else created.replace(tzinfo=UTC)
    return timezone.now()


def wechat_message_handle(*, account: WeChatAccount, message) -> str | None:
    """Process one parsed push once. Returns reply XML, or None for ``success``."""
    key = dedupe_key(message)
    try:
        with transaction.atomic():
            WeChatInboundMessage.objects.for_org(account.org_id).create(
                org_id=account.org_id,
                account=account,
                dedupe_key=key,
                msg_type=message_kind(message)[:32],
            )
            _apply(account=account, message=message, key=key)
    except IntegrityError:
        # A retry of a push we processed (or are processing): no side effects again, but
        # the same answer, since WeChat retries when the first answer did not reach it.
        log.info("wechat push replay ignored (account %s)", account.pk)
    return _reply(account=account, message=message)


def message_kind(message) -> str:
    """``text``, ``image``… for messages; the event name (``subscribe_scan``…) for events."""
    if message.type == "event":
        return str(getattr(message, "event", "") or "")
    return str(message.type)


def _staff_bind_scene(message) -> str:
    """The scene of a scan (new or existing follower) of a staff member's binding code."""
    if message_kind(message) not in ("subscribe_scan", "scan"):
        return ""
    scene = getattr(message, "scene_id", "") or ""
    return scene if scene.startswith(STAFF_BIND_PREFIX) else ""


def _apply(*, account: WeChatAccount, message, key: str) -> None:
    openid = message.source
    kind = message_kind(message)
    if staff_scene := _staff_bind_scene(message):
        _on_staff_bind(account=account, message=message, openid=openid, scene=staff_scene)
    elif kind in ("subscribe", "subscribe_scan"):
        scene = getattr(message, "scene_id", "") or ""
        _on_subscribe(account=account, message=message, openid=openid, scene=scene, key=key)
        service_window_touch(account=account, openid=openid, opened_by=WindowOpener.FOLLOW)
    elif kind == "unsubscribe":
        _on_unsubscribe(account=account, message=message, openid=openid, key=key)
    elif kind == "scan":
        _count_scene(account=account, scene=getattr(message, "scene_id", ""), subscribed=False)
        service_window_touch(account=account, openid=openid, opened_by=WindowOpener.SCAN)
    elif kind == "click":
        service_window_touch(account=account, openid=openid, opened_by=WindowOpener.CLICK)
    elif kind in ("text", "image", "voice", "video", "shortvideo", "location", "link"):
        service_window_touch(account=account, openid=openid, opened_by=WindowOpener.MESSAGE)


def _on_subscribe(*, account, message, openid: str, scene: str, key: str) -> None:
    source, detail, room_id = parse_scene(scene)
    contact, _created = crm_bridge.contact_for_openid(
        org=account.org, appid=account.appid, openid=openid, source=source, source_detail=detail
    )
    now = _occurred_at(message)
    follower, created = WeChatFollower.objects.for_org(account.org_id).get_or_create(
        org_id=account.org_id,
        account=account,
        openid_hash=openid_hash(openid),
        defaults={
            "openid_encrypted": pii.encrypt(openid),
            "contact": contact,
            "subscribed": True,
            "subscribed_at": now,
            "scene": scene[:64],
        },
    )
    if not created:
        follower.contact = contact
        follower.subscribed = True
        follower.subscribed_at = now
        follower.unsubscribed_at = None
        follower.scene = scene[:64]
        follower.save(
            update_fields=["contact", "subscribed", "subscribed_at", "unsubscribed_at", "scene"]
        )
    _count_scene(account=account, scene=scene, subscribed=True)
    if source == Source.INVITE:
        crm_bridge.accept_invite(
            invitee=contact,
            code=detail["invite"],
            room_id=None,
            device=f"oa:{openid_hash(openid)[:12]}",
        )
    crm_bridge.record_event(
        contact=contact,
        type="oa.subscribe",
        props={"account": account.pk, "scene": scene, **detail},
        occurred_at=now,
        room_id=room_id,
        key=f"wx:{key}",
    )
    crm_bridge.grant_consent(
        contact=contact,
        purpose="wechat_service",
        source="oa.subscribe",
        evidence={"account": account.pk, "scene": scene, "at": now.isoformat()},
    )
    enqueue(wechat_follower_enrich, follower.pk)


def _on_staff_bind(*, account, message, openid: str, scene: str) -> None:
    """A staff member scanned their binding code: follow state is kept (template messages
    reach followers only) but no CRM contact, event or consent is made — staff are not leads."""
    subscribing = message_kind(message) == "subscribe_scan"
    now = _occurred_at(message)
    follower, created = WeChatFollower.objects.for_org(account.org_id).get_or_create(
        org_id=account.org_id,
        account=account,
        openid_hash=openid_hash(openid),
        defaults={
            "openid_encrypted": pii.encrypt(openid),
            "subscribed": True,
            "subscribed_at": now,
            "scene": "staff-bind",
        },
    )
    if not created and (subscribing or not follower.subscribed):
        # SCAN comes from followers only: a row we thought unsubscribed is out of date.
        follower.subscribed = True
        follower.subscribed_at = now if subscribing else follower.subscribed_at or now
        follower.unsubscribed_at = None
        follower.save(update_fields=["subscribed", "subscribed_at", "unsubscribed_at"])
    service_window_touch(
        account=account,
        openid=openid,
        opened_by=WindowOpener.FOLLOW if subscribing else WindowOpener.SCAN,
    )
    extensions.staff_bind_scan.get()(account=account, openid=openid, scene=scene)


def _on_unsubscribe(*, account, message, openid: str, key: str) -> None:
    now = _occurred_at(message)
    follower = (
        WeChatFollower.objects.for_org(account.org_id)
        .filter(account=account, openid_hash=openid_hash(openid))
        .select_related("contact")
        .first()
    )
    if follower is None:
        contact, _ = crm_bridge.contact_for_openid(
            org=account.org, appid=account.appid, openid=openid, source=Source.OTHER
        )
        follower = WeChatFollower.objects.for_org(account.org_id).create(
            org_id=account.org_id,
            account=account,
            openid_hash=openid_hash(openid),
            openid_encrypted=pii.encrypt(openid),
            contact=contact,
            subscribed=False,
        )
    follower.subscribed = False
    follower.unsubscribed_at = now
    follower.save(update_fields=["subscribed", "unsubscribed_at"])
    if follower.contact is not None:
        crm_bridge.record_event(
            contact=follower.contact,
            type="oa.unsubscribe",
            props={"account": account.pk},
            occurred_at=now,
            key=f"wx:{key}",
        )


def _count_scene(*, account, scene: str, subscribed: bool) -> None:
    if not scene:
        return
    updates = {"scans": F("scans") + 1}
    if subscribed:
        updates["subscribes"] = F("subscribes") + 1
    WeChatQrScene.objects.for_org(account.org_id).filter(account=account, scene=scene).update(
        **updates
    )


# --- replies (read-only: also answered for replays) ----------------------------------------


def _reply(*, account: WeChatAccount, message) -> str | None:
    text = None
    kind = message_kind(message)
    if staff_scene := _staff_bind_scene(message):
        text = extensions.staff_bind_reply_text.get()(
            account=account, openid=message.source, scene=staff_scene
        )
    elif kind in ("subscribe", "subscribe_scan"):
        text = _welcome_text(account=account, scene=getattr(message, "scene_id", "") or "")
    elif kind == "text":
        text = keyword_reply_text(account=account, content=message.content or "")
    elif kind == "click":
        text = keyword_reply_text(account=account, content=getattr(message, "key", "") or "")
    if not text:
        return None
    return create_reply(text, message).render()


def _welcome_text(*, account: WeChatAccount, scene: str) -> str:
    welcome = account.welcome_text or _("欢迎关注！直播开播、回放和福利会第一时间通知你。")
    _source, _detail, room_id = parse_scene(scene)
    if room_id is not None:
        return f"{welcome}\n{_('进入直播间')}：{room_url(room_id)}"
    return welcome


def room_url(room_id: int) -> str:
    # Called while answering WeChat's push, whose Host is the server URL configured on
    # the official account's page, not necessarily the public site: SITE_URL.
    return links.absolute_reverse("live-room", args=[room_id])


def keyword_reply_text(*, account: WeChatAccount, content: str) -> str | None:
    """The configured auto-reply for a message text, or None."""
    content = content.strip()
    if not content:
        return None
    rules = WeChatKeywordReply.objects.for_org(account.org_id).filter(
        account=account, is_active=True
    )
    for rule in rules:
        if (rule.match == KeywordMatch.EXACT and content == rule.keyword) or (
            rule.match == KeywordMatch.CONTAINS and rule.keyword in content
        ):
            return _keyword_action_text(account=account, rule=rule)
    return None


def _keyword_action_text(*, account: WeChatAccount, rule: WeChatKeywordReply) -> str | None:
    rooms = Room.objects.for_org(account.org_id)
    if rule.action == KeywordAction.LATEST_REPLAY:
        room = rooms.filter(status=RoomStatus.ENDED).order_by("-ended_at", "-id").first()
        if room is None:
            return rule.text or _("暂时还没有回放，开播时会通知你。")
        return f"{rule.text or _('最新回放')}：{room.title}\n{room_url(room.pk)}"
    if rule.action == KeywordAction.ROOM:
        room = (
            rooms.filter(status=RoomStatus.LIVE).order_by("-started_at").first()
            or rooms.filter(status=RoomStatus.SCHEDULED).order_by("scheduled_start").first()
        )
        if room is None:
            return rule.text or None
        return f"{rule.text or _('直播间')}：{room.title}\n{room_url(room.pk)}"
    return rule.text or None
