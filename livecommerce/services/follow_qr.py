"""The official-account follow QR of a room or an invite (scene ``room:{id}`` or
``invite:{code}``). Official accounts belong to the wechat app, above the rooms
(docs/architecture.md); it implements ``follow_qr_url`` (WechatConfig.ready)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.errors import DomainError
from core.hooks import Hook

log = logging.getLogger(__name__)

# fn(*, org_id, scene) -> the follow-QR URL of ``scene`` on the organisation's official
# account, or None when it has none. Raises a DomainError when WeChat fails.
follow_qr_url: Hook[Callable[..., str | None]] = Hook("livecommerce.follow_qr_url", single=True)


def follow_qr_url_or_blank(*, org_id: int, scene: str) -> str:
    """The follow-QR URL of ``scene``, or "" (no account, or WeChat failed: a poster must
    always render, so the caller keeps the invite link)."""
    try:
        return follow_qr_url.get()(org_id=org_id, scene=scene) or ""
    except DomainError:
        log.warning("follow QR for %s unavailable", scene, exc_info=True)
        return ""
