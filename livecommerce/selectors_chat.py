"""Chat reads other features rely on (the lucky draw's "commented keyword K")."""

from __future__ import annotations

from django.db.models import QuerySet

from livecommerce.models import ChatMessage, ChatStatus, Room


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
