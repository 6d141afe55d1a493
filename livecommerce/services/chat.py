"""Posting chat: the whole abuse stack runs here, in this order.

1. text checks (empty, too long);
2. bans (contact, device or IP; room or organisation-wide) and mutes → refused;
3. per-viewer rate (atomic cache counters; ~1 message a second by default, or the room's
   ``viewer_interval_seconds``) and slow mode for new viewers;
4. sensitive words / patterns of the organisation → refused or masked, then the registered
   platform content checks (``core.content_checks``: WeChat msgSecCheck for mini-program
   viewers) → refused or held for review;
5. status: shadow-banned authors' messages are ``shadow`` (only they and staff see them),
   pre-moderated rooms queue viewers' messages as ``pending``;
6. persist, then publish after commit; the CRM ``chat`` event goes through the hub's batch.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core import content_checks, ratelimit
from core.errors import DomainError, NotFound
from crm.models import Contact
from livecommerce import events
from livecommerce.models import (
    ChatMessage,
    ChatRestriction,
    ChatStatus,
    RestrictionKind,
    Room,
    RoomChatSettings,
    RoomStatus,
    SensitiveAction,
    SensitiveWord,
    StreamerProfile,
)
from livecommerce.realtime.crm import buffer


class ChatRejected(DomainError):
    """A chat message was refused; ``code`` says why (sent to the author as a notice)."""

    status_code = 403

    def __init__(self, message: str, *, code: str, status_code: int = 403, **extra):
        super().__init__(message, code=code)
        self.status_code = status_code
        self.extra = extra


@dataclass(frozen=True)
class ChatAuthor:
    org_id: int
    contact_id: int | None = None  # viewers
    user_id: int | None = None  # staff
    nickname: str = ""
    device: str = ""
    ip: str = ""

    @property
    def is_staff(self) -> bool:
        return self.user_id is not None


def chat_event_body(message: ChatMessage) -> dict:
    """The payload of a ``chat`` event (docs/realtime.md)."""
    return {
        "id": message.pk,
        "text": message.text,
        "nickname": message.nickname,
        "contact_id": message.contact_id,
        "host": message.user_id is not None,
        "status": message.status,
        "at": message.created_at.isoformat(),
    }


# -- sensitive words ----------------------------------------------------------------------------

_words_cache: dict[int, tuple[float, list[tuple[re.Pattern, str]]]] = {}
_words_lock = threading.Lock()
_WORDS_TTL = 10.0


def _compiled_words(org_id: int) -> list[tuple[re.Pattern, str]]:
    with _words_lock:
        cached = _words_cache.get(org_id)
        if cached and time.monotonic() - cached[0] < _WORDS_TTL:
            return cached[1]
    compiled = []
    for word in SensitiveWord.objects.for_org(org_id).only("pattern", "is_regex", "action"):
        try:
            pattern = re.compile(word.pattern if word.is_regex else re.escape(word.pattern), re.I)
        except re.error:
            continue
        compiled.append((pattern, word.action))
    with _words_lock:
        _words_cache[org_id] = (time.monotonic(), compiled)
    return compiled


def sensitive_words_forget(org_id: int) -> None:
    with _words_lock:
        _words_cache.pop(org_id, None)


def sensitive_words_apply(*, org_id: int, text: str) -> tuple[str, bool]:
    """(text, masked). Raises ChatRejected when a ``reject`` word matches."""
    masked = False
    for pattern, action in _compiled_words(org_id):
        if not pattern.search(text):
            continue
        if action == SensitiveAction.REJECT:
            raise ChatRejected(_("消息包含敏感词"), code="sensitive", status_code=400)
        text = pattern.sub(lambda m: "*" * len(m.group(0)), text)
        masked = True
    return text, masked


# -- restrictions ---------------------------------------------------------------------------------


def active_restrictions(*, room: Room, author: ChatAuthor) -> list[ChatRestriction]:
    now = timezone.now()
    target = Q(contact_id=author.contact_id)
    if author.device:
        target |= Q(device=author.device)
    if author.ip:
        target |= Q(ip=author.ip)
    return list(
        ChatRestriction.objects.for_org(room.org_id)
        .filter(target, Q(room=room) | Q(room=None), revoked_at=None)
        .filter(Q(until=None) | Q(until__gt=now))
    )


def _check_restrictions(room: Room, author: ChatAuthor) -> bool:
    """Raises for bans and mutes; returns True when the author is shadow-banned."""
    shadow = False
    for restriction in active_restrictions(room=room, author=author):
        if restriction.kind == RestrictionKind.BAN:
            raise ChatRejected(_("你已被禁止在此发言"), code="banned")
        if restriction.kind == RestrictionKind.MUTE:
            until = restriction.until.isoformat() if restriction.until else None
            raise ChatRejected(_("你已被禁言"), code="muted", until=until)
        if restriction.kind == RestrictionKind.SHADOW:
            shadow = True
    return shadow


def _check_rate(room: Room, author: ChatAuthor, chat_settings: RoomChatSettings | None) -> None:
    identity = f"{room.pk}:{author.contact_id}"
    rule = None
    if chat_settings and chat_settings.viewer_interval_seconds:
        rule = f"1/{chat_settings.viewer_interval_seconds}"
    if not ratelimit.hit("chat_viewer", identity, rule=rule):
        raise ChatRejected(_("发言太快了，请稍后再试"), code="rate_limited", status_code=429)
    if chat_settings and chat_settings.slow_mode_seconds:
        created = (
            Contact.objects.for_org(room.org_id)
            .filter(pk=author.contact_id)
            .values_list("created_at", flat=True)
            .first()
        )
        young = created is None or created > timezone.now() - timedelta(
            minutes=chat_settings.new_viewer_minutes
        )
        if young and not ratelimit.hit(
            "chat_viewer", f"slow:{identity}", rule=f"1/{chat_settings.slow_mode_seconds}"
        ):
            raise ChatRejected(
                _("新观众慢速模式：请稍后再发言"),
                code="slow_mode",
                status_code=429,
                seconds=chat_settings.slow_mode_seconds,
            )


def room_chat_settings(room: Room) -> RoomChatSettings | None:
    return RoomChatSettings.objects.for_org(room.org_id).filter(room=room).first()


def _staff_nickname(user_id: int) -> str:
    profile = StreamerProfile.unscoped.filter(user_id=user_id).only("name").first()
    if profile:
        return profile.name
    user = get_user_model().objects.filter(pk=user_id).only("username").first()
    return user.get_username() if user else _("主播")


def chat_post(*, room_id: int, author: ChatAuthor, text: str) -> ChatMessage:
    """Post one chat message into a room as a viewer or a staff member of its organisation.

    Raises ChatRejected (code ``empty``, ``too_long``, ``banned``, ``muted``,
    ``rate_limited``, ``slow_mode``, ``sensitive``, ``content_risky``, ``room_ended``) or
    NotFound.
    """
    text = (text or "").strip()
    if not text:
        raise ChatRejected(_("消息不能为空"), code="empty", status_code=400)
    if len(text) > settings.CHAT_MAX_LENGTH:
        raise ChatRejected(
            _("消息太长"), code="too_long", status_code=400, max_length=settings.CHAT_MAX_LENGTH
        )
    room = Room.objects.for_org(author.org_id).filter(pk=room_id).first()
    if room is None:
        raise NotFound(_("直播间不存在"))
    if room.status == RoomStatus.ENDED and not author.is_staff:
        raise ChatRejected(_("直播已结束"), code="room_ended", status_code=409)
    chat_settings = room_chat_settings(room)
    status = ChatStatus.VISIBLE
    nickname = author.nickname
    if author.is_staff:
        nickname = _staff_nickname(author.user_id)
    else:
        if _check_restrictions(room, author):
            status = ChatStatus.SHADOW
        _check_rate(room, author, chat_settings)
        if status == ChatStatus.VISIBLE and chat_settings and chat_settings.premoderation:
            status = ChatStatus.PENDING
    text, masked = sensitive_words_apply(org_id=room.org_id, text=text)
    if not author.is_staff and author.contact_id is not None:
        verdict = content_checks.text_verdict(
            org_id=room.org_id, contact_id=author.contact_id, text=text, scene="chat"
        )
        if verdict == content_checks.RISKY:
            raise ChatRejected(_("消息未通过内容安全检查"), code="content_risky", status_code=400)
        if verdict == content_checks.REVIEW and status == ChatStatus.VISIBLE:
            status = ChatStatus.PENDING  # doubtful: the console's review queue decides
    with transaction.atomic():
        message = ChatMessage.objects.for_org(room.org_id).create(
            org_id=room.org_id,
            room=room,
            contact_id=author.contact_id,
            user_id=author.user_id,
            nickname=nickname[:64],
            text=text,
            status=status,
            masked=masked,
            device=author.device[:64],
            ip=author.ip or None,
        )
        chat_publish(message)
    if author.contact_id is not None:
        buffer.record(
            org_id=room.org_id,
            contact_id=author.contact_id,
            type="chat",
            props={"text": text[:200], "message_id": message.pk, "status": status},
            room_id=room.pk,
            key=f"chat:{message.pk}",
        )
    return message


def chat_publish(message: ChatMessage) -> None:
    """Tell screens about a message according to its status (after commit)."""
    audience = {
        ChatStatus.VISIBLE: "all",
        ChatStatus.SHADOW: "self",  # the author (and staff) only
        # The console's pre-moderation queue, and the author, who is told it awaits review
        # (a message that silently vanished reads as a broken page).
        ChatStatus.PENDING: "self",
    }.get(message.status)
    if audience is None:
        return
    events.send_room_event_on_commit(
        room_id=message.room_id,
        type="chat",
        data=chat_event_body(message),
        audience=audience,
        contact_id=message.contact_id,
    )
