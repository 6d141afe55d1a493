"""Background work of the WeChat identity code (Celery tasks; see core.tasks)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone
from wechatpy.exceptions import WeChatException

from core import pii
from core.tasks import periodic
from wechat import crm_bridge, extensions
from wechat.client import wechat_client
from wechat.models import PhoneOtp, WeChatFollower, WeChatInboundMessage

log = logging.getLogger(__name__)

# WeChat retries a push within seconds; a week of dedupe rows is plenty.
DEDUPE_KEEP = timedelta(days=7)
_GENDERS = {1: "male", 2: "female"}


@shared_task(name="wechat.follower_enrich", ignore_result=True)
def wechat_follower_enrich(follower_id: int) -> None:
    """Fetch a new follower's profile (nickname, gender, region, unionid) from WeChat.

    Runs outside the callback because it calls WeChat and the callback must answer within
    5 seconds. A unionid joins the follower's contact with the same person's other apps."""

    follower = (
        WeChatFollower.unscoped.select_related("account", "contact").filter(pk=follower_id).first()
    )
    if follower is None or follower.contact is None:
        return
    openid = pii.decrypt(follower.openid_encrypted)
    try:
        info = wechat_client(follower.account).user.get(openid)
    except (WeChatException, OSError) as exc:
        log.warning("wechat user info failed for follower %s: %s", follower_id, exc)
        return
    contact = follower.contact
    changed = []
    for field, value in (
        ("nickname", (info.get("nickname") or "")[:64]),
        ("province", (info.get("province") or "")[:32]),
        ("city", (info.get("city") or "")[:32]),
    ):
        if value and not getattr(contact, field):
            setattr(contact, field, value)
            changed.append(field)
    gender = _GENDERS.get(info.get("sex"))
    if gender and contact.gender == "unknown":
        contact.gender = gender
        changed.append("gender")
    if changed:
        contact.save(update_fields=changed)
    if info.get("unionid"):
        survivor = crm_bridge.identity_attach(
            contact=contact, kind="unionid", value=info["unionid"]
        )
        if survivor.pk != contact.pk:
            WeChatFollower.unscoped.filter(pk=follower.pk).update(contact=survivor)


@shared_task(name="wechat.inbound_sweep", ignore_result=True)
def wechat_inbound_sweep() -> int:
    """Delete callback dedupe records older than a week, phone codes and staff binding codes
    expired a day ago (staff binding codes: by the app that keeps them, through
    wechat.extensions.inbound_sweepers)."""
    now = timezone.now()
    deleted, _ = WeChatInboundMessage.unscoped.filter(created_at__lt=now - DEDUPE_KEEP).delete()
    otps, _ = PhoneOtp.unscoped.filter(expires_at__lt=now - timedelta(days=1)).delete()
    swept = sum(sweep(before=now - timedelta(days=1)) for sweep in extensions.inbound_sweepers)
    return deleted + otps + swept


periodic("wechat.inbound_sweep", wechat_inbound_sweep, 3600)
