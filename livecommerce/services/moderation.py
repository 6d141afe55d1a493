"""Moderation: mutes, bans, shadow-bans, deletes, pre-moderation, settings, announcement.

Every action is checked against the room (``ensure_can_manage_room``), written in one
transaction with its ``core.AuditLog`` row (action ``chat.<what>``), and pushed to screens
after commit as a ``moderation`` / ``announcement`` / ``chat`` event.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, DomainError
from core.models import AuditLog, Membership
from livecommerce import events
from livecommerce.models import (
    ChatMessage,
    ChatRestriction,
    ChatStatus,
    RestrictionKind,
    Room,
    RoomChatSettings,
    SensitiveWord,
)
from livecommerce.realtime.bans import ban_from_restriction
from livecommerce.services.chat import chat_event_body, chat_publish, sensitive_words_forget
from livecommerce.services.room_access import ensure_can_manage_room

ACTIONS = ("mute", "unmute", "ban", "unban", "shadow", "unshadow")


def _audit(*, membership: Membership, action: str, target_type: str, target_id, detail: dict, ip):
    AuditLog.objects.for_org(membership.org_id).create(
        org_id=membership.org_id,
        actor_id=membership.user_id,
        action=f"chat.{action}",
        target_type=target_type,
        target_id=str(target_id or ""),
        detail=detail,
        ip=ip,
    )


def moderation_apply(
    *,
    membership: Membership,
    room: Room,
    action: str,
    contact_id: int | None = None,
    message: ChatMessage | None = None,
    by_device: bool = False,
    by_ip: bool = False,
    minutes: int | None = None,
    org_wide: bool = False,
    reason: str = "",
    actor_ip: str | None = None,
) -> list[ChatRestriction]:
    """Mute / ban / shadow-ban (or lift it) for a contact, or the author of ``message``.

    Bans may also target the author's device and/or IP (``by_device`` / ``by_ip``, taken
    from the message). ``minutes`` makes it timed; ``org_wide`` applies to every room.
    Returns the restrictions created (or revoked).
    """
    ensure_can_manage_room(membership=membership, room=room)
    if action not in ACTIONS:
        raise DomainError(_("未知操作"), fields={"action": [_("未知操作")]})
    device, ip = "", None
    if message is not None:
        contact_id = contact_id or message.contact_id
        device = message.device if by_device else ""
        ip = message.ip if by_ip else None
    if contact_id is None and not device and not ip:
        raise DomainError(_("请指定观众"), fields={"contact": [_("请指定观众或消息")]})
    kind = action.removeprefix("un")
    until = timezone.now() + timedelta(minutes=minutes) if minutes else None
    with transaction.atomic():
        if action.startswith("un"):
            restrictions = list(
                ChatRestriction.objects.for_org(room.org_id).filter(
                    kind=kind, contact_id=contact_id, revoked_at=None
                )
            )
            ChatRestriction.objects.for_org(room.org_id).filter(
                pk__in=[r.pk for r in restrictions]
            ).update(revoked_at=timezone.now())
        else:
            restrictions = [
                ChatRestriction.objects.for_org(room.org_id).create(
                    org_id=room.org_id,
                    room=None if org_wide else room,
                    kind=kind,
                    contact_id=contact_id,
                    device=device if kind == RestrictionKind.BAN else "",
                    ip=ip if kind == RestrictionKind.BAN else None,
                    until=until,
                    reason=reason,
                    created_by_id=membership.user_id,
                )
            ]
        detail = {
            "room": room.pk,
            "org_wide": org_wide,
            "minutes": minutes,
            "reason": reason,
            "by_device": bool(device),
            "by_ip": bool(ip),
        }
        _audit(
            membership=membership,
            action=action,
            target_type="contact",
            target_id=contact_id,
            detail=detail,
            ip=actor_ip,
        )
        body = {
            "action": action,
            "contact_id": contact_id,
            "until": until.isoformat() if until else None,
        }
        if kind == RestrictionKind.BAN:
            # Every hub keeps the organisation's bans in memory so the socket handshake
            # refuses a banned viewer without a query per join; this keeps them current.
            events.send_hub_control_on_commit(
                kind="bans",
                org_id=room.org_id,
                data=(
                    {"add": [], "lift": [r.pk for r in restrictions]}
                    if action == "unban"
                    else {"add": [ban_from_restriction(r).as_message() for r in restrictions]}
                ),
            )
        if kind == RestrictionKind.SHADOW:
            # Never tell a shadow-banned viewer: only staff learn about it.
            events.send_room_event_on_commit(
                room_id=room.pk, type="moderation", data=body, audience="host"
            )
        else:
            if action == "ban":
                body.update({"device": device, "ip": ip})  # the hubs close matching sockets
            events.send_room_event_on_commit(
                room_id=room.pk,
                type="moderation",
                data=body,
                audience="self" if contact_id else "host",
                contact_id=contact_id,
            )
    return restrictions


def chat_message_delete(
    *, membership: Membership, message: ChatMessage, actor_ip: str | None = None
) -> ChatMessage:
    """Remove a message from every screen (it stays stored, status ``deleted``).

    Rejecting a pending (pre-moderated) message is this same action: the audit detail's
    ``was`` keeps the status it had."""
    ensure_can_manage_room(membership=membership, room=message.room)
    if message.status == ChatStatus.DELETED:
        return message
    was = message.status  # "pending": the host rejected it from the pre-moderation queue
    with transaction.atomic():
        message.status = ChatStatus.DELETED
        message.save(update_fields=["status", "updated_at"])
        _audit(
            membership=membership,
            action="delete",
            target_type="chat_message",
            target_id=message.pk,
            detail={"room": message.room_id, "text": message.text[:200], "was": was},
            ip=actor_ip,
        )
        events.send_room_event_on_commit(
            room_id=message.room_id,
            type="moderation",
            data={"action": "delete", "message_id": message.pk},
        )
    return message


def chat_message_approve(
    *, membership: Membership, message: ChatMessage, actor_ip: str | None = None
) -> ChatMessage:
    """Release a pre-moderated message to every screen."""
    ensure_can_manage_room(membership=membership, room=message.room)
    if message.status != ChatStatus.PENDING:
        raise Conflict(_("该消息不在待审核队列中"), code="not_pending")
    with transaction.atomic():
        message.status = ChatStatus.VISIBLE
        message.save(update_fields=["status", "updated_at"])
        _audit(
            membership=membership,
            action="approve",
            target_type="chat_message",
            target_id=message.pk,
            detail={"room": message.room_id},
            ip=actor_ip,
        )
        chat_publish(message)
    return message


def chat_settings_update(
    *, membership: Membership, room: Room, actor_ip: str | None = None, **changes
) -> RoomChatSettings:
    ensure_can_manage_room(membership=membership, room=room)
    with transaction.atomic():
        chat_settings, _created = RoomChatSettings.objects.for_org(room.org_id).get_or_create(
            org_id=room.org_id, room=room
        )
        for field, value in changes.items():
            setattr(chat_settings, field, value)
        chat_settings.save()
        _audit(
            membership=membership,
            action="settings",
            target_type="room",
            target_id=room.pk,
            detail={"room": room.pk, **changes},
            ip=actor_ip,
        )
        events.send_room_event_on_commit(
            room_id=room.pk,
            type="moderation",
            data={
                "action": "settings",
                "slow_mode_seconds": chat_settings.slow_mode_seconds,
                "premoderation": chat_settings.premoderation,
            },
        )
    return chat_settings


def announcement_set(
    *, membership: Membership, room: Room, text: str, actor_ip: str | None = None
) -> RoomChatSettings:
    """Pin (or, with an empty text, clear) the room's announcement on every screen."""
    ensure_can_manage_room(membership=membership, room=room)
    with transaction.atomic():
        chat_settings, _created = RoomChatSettings.objects.for_org(room.org_id).get_or_create(
            org_id=room.org_id, room=room
        )
        chat_settings.announcement = text
        chat_settings.save(update_fields=["announcement", "updated_at"])
        _audit(
            membership=membership,
            action="announcement",
            target_type="room",
            target_id=room.pk,
            detail={"room": room.pk, "text": text},
            ip=actor_ip,
        )
        events.send_room_event_on_commit(room_id=room.pk, type="announcement", data={"text": text})
    return chat_settings


def sensitive_word_add(
    *, membership: Membership, pattern: str, is_regex: bool = False, action: str = "reject"
) -> SensitiveWord:

    if is_regex:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise DomainError(_("正则表达式无效"), fields={"pattern": [str(exc)]}) from None
    if SensitiveWord.objects.for_org(membership.org_id).filter(pattern=pattern).exists():
        raise Conflict(_("该敏感词已存在"), code="duplicate", fields={"pattern": [_("已存在")]})
    with transaction.atomic():
        word = SensitiveWord.objects.for_org(membership.org_id).create(
            org_id=membership.org_id, pattern=pattern, is_regex=is_regex, action=action
        )
        _audit(
            membership=membership,
            action="word_add",
            target_type="sensitive_word",
            target_id=word.pk,
            detail={"pattern": pattern, "is_regex": is_regex, "action": action},
            ip=None,
        )
    sensitive_words_forget(membership.org_id)
    return word


def sensitive_word_delete(*, membership: Membership, word: SensitiveWord) -> None:
    with transaction.atomic():
        _audit(
            membership=membership,
            action="word_delete",
            target_type="sensitive_word",
            target_id=word.pk,
            detail={"pattern": word.pattern},
            ip=None,
        )
        word.delete()
    sensitive_words_forget(membership.org_id)


__all__ = [
    "ACTIONS",
    "moderation_apply",
    "chat_message_delete",
    "chat_message_approve",
    "chat_settings_update",
    "announcement_set",
    "sensitive_word_add",
    "sensitive_word_delete",
    "chat_event_body",
]
