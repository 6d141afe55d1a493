"""Chat reads other features rely on (the lucky draw's "commented keyword K")."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.models import AuditLog
from crm.models import Contact
from livecommerce.models import ChatMessage, ChatStatus, Room

# Organisation-wide list changes: they act in every room, so every room's log shows them.
ORG_WIDE_CHAT_ACTIONS = ("chat.word_add", "chat.word_delete")


def contacts_who_commented(room_id: int, keyword: str) -> set[int]:
    """Contact ids with a visible message containing ``keyword`` in room ``room_id``.

    Shadow, pending and deleted messages do not count (a shadow-banned viewer cannot win a
    draw by commenting).
    """
    return set(
        ChatMessage.unscoped.filter(
            room_id=room_id,
            status=ChatStatus.VISIBLE,
            contact__isnull=False,
            text__contains=keyword,
        ).values_list("contact_id", flat=True)
    )


def chat_list_for_staff(*, room: Room, status: str | None = None) -> QuerySet[ChatMessage]:
    messages = ChatMessage.objects.for_org(room.org_id).filter(room=room).order_by("-id")
    if status:
        messages = messages.filter(status=status)
    return messages


def moderation_log_for_room(*, room: Room, limit: int = 200) -> list[dict]:
    """The room's moderation audit entries (``chat.*``), newest first, with the actor's and
    the target viewer's names (two queries in all)."""
    entries = list(
        AuditLog.objects.for_org(room.org_id)
        .filter(Q(detail__room=room.pk) | Q(action__in=ORG_WIDE_CHAT_ACTIONS))
        .filter(action__startswith="chat.")
        .select_related("actor")
        .order_by("-id")[:limit]
    )
    contact_ids = {
        int(e.target_id) for e in entries if e.target_type == "contact" and e.target_id.isdigit()
    }
    nicknames = dict(
        Contact.objects.for_org(room.org_id)
        .filter(pk__in=contact_ids)
        .values_list("pk", "nickname")
    )
    rows = []
    for e in entries:
        target = ""
        if e.target_type == "contact" and e.target_id.isdigit():
            target = nicknames.get(int(e.target_id), "") or f"#{e.target_id}"
        rows.append(
            {
                "id": e.pk,
                "action": e.action,
                "actor": e.actor_id,
                "actor_name": e.actor.get_username() if e.actor else "",
                "target_type": e.target_type,
                "target_id": e.target_id,
                "target_name": target,
                "detail": e.detail,
                "created_at": e.created_at,
            }
        )
    return rows
