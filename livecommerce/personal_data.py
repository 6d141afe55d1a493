"""livecommerce's part of the personal-data map (crm/personal_data.py): rows the map cannot
find through a foreign key or a hash."""

from __future__ import annotations

from django.db.models import Q

from crm.personal_data import register_finder
from livecommerce.models import ChatMessage


@register_finder("audit_rows_about_the_persons_chat")
def audit_rows_about_the_persons_chat(*, org_id: int, contact_ids: list[int]) -> Q:
    """Moderation audit rows about the person's chat messages (chat.delete copies the text)."""
    messages = ChatMessage.unscoped.filter(org_id=org_id, contact_id__in=contact_ids)
    ids = [str(pk) for pk in messages.values_list("pk", flat=True)]
    return Q(target_type="chat_message", target_id__in=ids)
