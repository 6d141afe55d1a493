"""User tags of an official account (``tags/get``), read for the campaign builder's tag picker
and mass sends by tag (campaigns.services.mass_tags)."""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from wechat.client import wechat_client
from wechat.login import WeChatUnavailable

log = logging.getLogger(__name__)


def wechat_tags_list(*, account) -> list[dict]:
    """The official account's user tags as WeChat holds them (``tags/get``):
    ``[{"id", "name", "count"}]``. Network I/O; WeChatUnavailable (503) when WeChat cannot
    be read, as the launch does."""
    try:
        tags = wechat_client(account).tag.get()
    except Exception:  # noqa: BLE001 - any WeChat or transport error
        log.warning("reading WeChat tags of account %s failed", account.pk, exc_info=True)
        raise WeChatUnavailable(_("读取公众号标签失败，请稍后再试")) from None
    return [
        {"id": int(t["id"]), "name": str(t.get("name") or ""), "count": int(t.get("count") or 0)}
        for t in tags or []
    ]
