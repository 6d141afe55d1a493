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

import ipaddress
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

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

log = logging.getLogger(__name__)


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


def _check_restrictions(restrictions: list[ChatRestriction]) -> bool:
    """Raises for bans and mutes; returns True when the author is shadow-banned."""
    shadow = False
    for restriction in restrictions:
        if restriction.kind == RestrictionKind.BAN:
            raise ChatRejected(_("你已被禁止在此发言"), code="banned")
        if restriction.kind == RestrictionKind.MUTE:
            until = restriction.until.isoformat() if restriction.until else None
            raise ChatRejected(_("你已被禁言"), code="muted", until=until)
        if restriction.kind == RestrictionKind.SHADOW:
            shadow = True
    return shadow


def _check_rate(
    room: Room,
    author: ChatAuthor,
    chat_settings: RoomChatSettings | None,
    contact_created: dict[int, datetime],
) -> None:
    identity = f"{room.pk}:{author.contact_id}"
    rule = None
    if chat_settings and chat_settings.viewer_interval_seconds:
        rule = f"1/{chat_settings.viewer_interval_seconds}"
    if not ratelimit.hit("chat_viewer", identity, rule=rule):
        raise ChatRejected(_("发言太快了，请稍后再试"), code="rate_limited", status_code=429)
    if chat_settings and chat_settings.slow_mode_seconds:
        created = contact_created.get(author.contact_id)
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


def _same_ip(a: str | None, b: str | None) -> bool:
    # PostgreSQL compares inet values, not their spelling ("::0:1" is "::1").
    if not a or not b:
        return False
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


class _Lookups:
    """What a batch of chat needs from the database, read with a fixed number of queries
    whatever the batch size: rooms, their chat settings, the active restrictions of every
    author (contact, device or IP; room or organisation-wide), the contacts' creation time
    for slow mode and staff nicknames. The per-message rules then run on these in memory."""

    def __init__(self):
        self.rooms: dict[int, Room] = {}
        self.settings: dict[int, RoomChatSettings] = {}
        self.restrictions: list[ChatRestriction] = []
        self.contact_created: dict[int, datetime] = {}
        self.staff_names: dict[int, str] = {}

    @classmethod
    def for_requests(cls, requests: list[ChatRequest]) -> _Lookups:
        lookups = cls()
        by_org: dict[int, set[int]] = {}
        for request in requests:
            by_org.setdefault(request.author.org_id, set()).add(request.room_id)
        rooms_q = Q(pk__in=[])
        for org_id, room_ids in by_org.items():
            rooms_q |= Q(org_id=org_id, pk__in=room_ids)
        # Every query below names its organisations explicitly (unscoped + org filter):
        # a batch spans organisations, and a room of another organisation is not found.
        lookups.rooms = {room.pk: room for room in Room.unscoped.filter(rooms_q)}
        if not lookups.rooms:
            return lookups
        lookups.settings = {
            chat_settings.room_id: chat_settings
            for chat_settings in RoomChatSettings.unscoped.filter(room_id__in=lookups.rooms)
        }
        viewers = [
            (lookups.rooms[r.room_id], r.author)
            for r in requests
            if r.room_id in lookups.rooms
            and lookups.rooms[r.room_id].org_id == r.author.org_id
            and not r.author.is_staff
        ]
        lookups._load_restrictions(viewers)
        slow_orgs = {
            lookups.rooms[room_id].org_id
            for room_id, chat_settings in lookups.settings.items()
            if chat_settings.slow_mode_seconds
        }
        slow_contacts = {
            author.contact_id
            for room, author in viewers
            if room.org_id in slow_orgs and author.contact_id is not None
        }
        if slow_contacts:
            lookups.contact_created = dict(
                Contact.unscoped.filter(org_id__in=slow_orgs, pk__in=slow_contacts).values_list(
                    "pk", "created_at"
                )
            )
        staff_ids = {r.author.user_id for r in requests if r.author.is_staff}
        if staff_ids:
            lookups._load_staff_names(staff_ids)
        return lookups

    def _load_restrictions(self, pairs: list[tuple[Room, ChatAuthor]]) -> None:
        if not pairs:
            return
        target = Q(pk__in=[])
        contacts = {author.contact_id for _room, author in pairs}
        if contacts - {None}:
            target |= Q(contact_id__in=contacts - {None})
        if None in contacts:
            target |= Q(contact_id=None)
        devices = {author.device for _room, author in pairs if author.device}
        if devices:
            target |= Q(device__in=devices)
        ips = {author.ip for _room, author in pairs if author.ip}
        if ips:
            target |= Q(ip__in=ips)
        now = timezone.now()
        self.restrictions = list(
            ChatRestriction.unscoped.filter(
                target,
                Q(room_id__in={room.pk for room, _author in pairs}) | Q(room=None),
                org_id__in={room.org_id for room, _author in pairs},
                revoked_at=None,
            ).filter(Q(until=None) | Q(until__gt=now))
        )

    def restrictions_for(self, room: Room, author: ChatAuthor) -> list[ChatRestriction]:
        return [
            r
            for r in self.restrictions
            if r.org_id == room.org_id
            and r.room_id in (None, room.pk)
            and (
                r.contact_id == author.contact_id
                or (author.device and r.device == author.device)
                or (author.ip and _same_ip(r.ip, author.ip))
            )
        ]

    def _load_staff_names(self, user_ids: set[int]) -> None:
        profiles = StreamerProfile.unscoped.filter(user_id__in=user_ids).order_by("pk")
        for user_id, name in profiles.values_list("user_id", "name"):
            self.staff_names.setdefault(user_id, name)
        missing = user_ids - set(self.staff_names)
        if missing:
            for user in get_user_model().objects.filter(pk__in=missing):
                self.staff_names[user.pk] = user.get_username()

    def staff_nickname(self, user_id: int) -> str:
        name = self.staff_names.get(user_id)
        return _("主播") if name is None else name


@dataclass(frozen=True)
class ChatRequest:
    room_id: int
    author: ChatAuthor
    text: str


def chat_post(*, room_id: int, author: ChatAuthor, text: str) -> ChatMessage:
    """Post one chat message into a room as a viewer or a staff member of its organisation.

    Raises ChatRejected (code ``empty``, ``too_long``, ``banned``, ``muted``,
    ``rate_limited``, ``slow_mode``, ``sensitive``, ``content_risky``, ``room_ended``) or
    NotFound. The batch path with one message: there is one rule set.
    """
    (result,) = chat_post_batch(requests=[ChatRequest(room_id=room_id, author=author, text=text)])
    if isinstance(result, Exception):
        raise result
    return result


def chat_post_batch(*, requests: list[ChatRequest]) -> list[ChatMessage | Exception]:
    """Post many chat messages (in arrival order) with a fixed number of queries.

    Returns, per request and in the same order, the stored message or the DomainError
    ``chat_post`` would have raised for it (ChatRejected, NotFound; any other exception is a
    row that could not be stored, a bug the author is told of as ``error``). Each message goes
    through every rule of ``chat_post`` in turn, in order, so two messages of one author in
    a batch count against the rate like two posts. Accepted messages are inserted by one
    multi-row INSERT in one transaction and published after its commit in request order
    (per room, the order they arrived in); their CRM ``chat`` events go to the hub's batch.
    """
    results: list[ChatMessage | Exception | None] = [None] * len(requests)
    pending: list[tuple[int, ChatMessage]] = []
    lookups = _Lookups.for_requests(requests)
    for index, request in enumerate(requests):
        try:
            pending.append((index, _message_checked(request, lookups)))
        except DomainError as exc:
            results[index] = exc
    if pending:
        failures = _persist([message for _index, message in pending])
        for (index, message), failure in zip(pending, failures, strict=True):
            results[index] = message if failure is None else failure
            if failure is not None:
                continue
            if message.contact_id is not None:
                buffer.record(
                    org_id=message.org_id,
                    contact_id=message.contact_id,
                    type="chat",
                    props={
                        "text": message.text[:200],
                        "message_id": message.pk,
                        "status": message.status,
                    },
                    room_id=message.room_id,
                    key=f"chat:{message.pk}",
                )
    return results


def _message_checked(request: ChatRequest, lookups: _Lookups) -> ChatMessage:
    """The unsaved message for one request after every rule, or raises why not."""
    author = request.author
    text = (request.text or "").strip()
    if not text:
        raise ChatRejected(_("消息不能为空"), code="empty", status_code=400)
    if len(text) > settings.CHAT_MAX_LENGTH:
        raise ChatRejected(
            _("消息太长"), code="too_long", status_code=400, max_length=settings.CHAT_MAX_LENGTH
        )
    room = lookups.rooms.get(request.room_id)
    if room is None or room.org_id != author.org_id:
        raise NotFound(_("直播间不存在"))
    if room.status == RoomStatus.ENDED and not author.is_staff:
        raise ChatRejected(_("直播已结束"), code="room_ended", status_code=409)
    chat_settings = lookups.settings.get(room.pk)
    status = ChatStatus.VISIBLE
    nickname = author.nickname
    if author.is_staff:
        nickname = lookups.staff_nickname(author.user_id)
    else:
        if _check_restrictions(lookups.restrictions_for(room, author)):
            status = ChatStatus.SHADOW
        _check_rate(room, author, chat_settings, lookups.contact_created)
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
    return ChatMessage(
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


def _persist(messages: list[ChatMessage]) -> list[Exception | None]:
    """One multi-row INSERT and one commit; publishes are registered in order for after it.

    Returns, per message, None when stored or why it could not be."""
    try:
        with transaction.atomic():
            ChatMessage.unscoped.bulk_create(messages)
            for message in messages:
                chat_publish(message)
        return [None] * len(messages)
    except Exception:
        if len(messages) == 1:
            raise
        # One bad row (a contact erased meanwhile) must not refuse its neighbours: the
        # batch's checked messages are stored one by one instead, and only the bad one fails.
        log.exception("chat batch insert failed; storing its %s messages one by one", len(messages))
    failures: list[Exception | None] = []
    for message in messages:
        message.pk = None
        try:
            with transaction.atomic():
                message.save(force_insert=True)
                chat_publish(message)
            failures.append(None)
        except Exception as exc:  # noqa: BLE001 - that author gets "error", the others stand
            log.exception("chat message could not be stored")
            failures.append(exc)
    return failures


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
