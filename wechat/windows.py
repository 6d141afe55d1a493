"""The 48-hour customer-service window and follower state — what a WeChat sender checks.

WeChat refuses customer-service messages (客服消息) outside 48 hours of the person's last
interaction (errcode 45015) and caps how many may follow one interaction. The product rule
(docs/wechat.md, "48-hour customer-service window"): at most 5 in the window, and at most 3
within the first minute after a follow, scan or menu click. Every inbound message/event
re-opens the window and resets the count. ``service_window_reserve`` checks and counts in ONE
conditional UPDATE, so concurrent senders never exceed the cap.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import pii
from wechat.models import (
    WeChatAccount,
    WeChatFollower,
    WeChatServiceWindow,
    WindowOpener,
)

WINDOW = timedelta(hours=48)
WINDOW_MAX_SENDS = 5
BURST_SECONDS = 60
BURST_MAX_SENDS = 3
_BURST_OPENERS = (WindowOpener.FOLLOW, WindowOpener.SCAN, WindowOpener.CLICK)


def openid_hash(openid: str) -> str:
    return pii.lookup_hash("openid", openid)


def service_window_touch(
    *, account: WeChatAccount, openid: str, opened_by: str, at: datetime | None = None
) -> None:
    """Re-open the window for ``openid`` after an inbound message or event."""
    at = at or timezone.now()
    key = openid_hash(openid)
    qs = WeChatServiceWindow.objects.for_org(account.org_id).filter(
        account=account, openid_hash=key
    )
    if qs.update(last_inbound_at=at, opened_by=opened_by, sent_count=0):
        return
    try:
        with transaction.atomic():
            WeChatServiceWindow.objects.for_org(account.org_id).create(
                org_id=account.org_id,
                account=account,
                openid_hash=key,
                last_inbound_at=at,
                opened_by=opened_by,
            )
    except IntegrityError:  # a concurrent push created it first
        qs.update(last_inbound_at=at, opened_by=opened_by, sent_count=0)


def service_window_reserve(
    *, account: WeChatAccount, openid: str, now: datetime | None = None
) -> bool:
    """Take one customer-service send from the window; False when WeChat would refuse it.

    Call it right before sending; a send that then fails at WeChat still used its slot
    (WeChat counts attempts the same way)."""
    now = now or timezone.now()
    burst = Q(
        opened_by__in=_BURST_OPENERS, last_inbound_at__gt=now - timedelta(seconds=BURST_SECONDS)
    )
    updated = (
        WeChatServiceWindow.objects.for_org(account.org_id)
        .filter(account=account, openid_hash=openid_hash(openid), last_inbound_at__gt=now - WINDOW)
        .filter(sent_count__lt=WINDOW_MAX_SENDS)
        .exclude(burst & Q(sent_count__gte=BURST_MAX_SENDS))
        .update(sent_count=F("sent_count") + 1)
    )
    return updated == 1


def service_window_open(
    *, account: WeChatAccount, openid: str, now: datetime | None = None
) -> bool:
    """Whether a customer-service message may be sent now (read-only check)."""
    now = now or timezone.now()
    window = (
        WeChatServiceWindow.objects.for_org(account.org_id)
        .filter(account=account, openid_hash=openid_hash(openid))
        .first()
    )
    if window is None or window.last_inbound_at <= now - WINDOW:
        return False
    if window.sent_count >= WINDOW_MAX_SENDS:
        return False
    in_burst = window.opened_by in _BURST_OPENERS and window.last_inbound_at > now - timedelta(
        seconds=BURST_SECONDS
    )
    return not (in_burst and window.sent_count >= BURST_MAX_SENDS)


def follower_is_subscribed(*, account: WeChatAccount, openid: str) -> bool:
    """True only for an openid we saw follow and not unfollow since. Unknown → False:
    WeChat sends (template, customer-service, mass) go to followers only."""
    return (
        WeChatFollower.objects.for_org(account.org_id)
        .filter(account=account, openid_hash=openid_hash(openid), subscribed=True)
        .exists()
    )
