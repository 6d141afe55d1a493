"""WeChat mass messages by user tag (``message/mass/sendall`` with ``filter.tag_id``).

wechatpy 1.8.18's ``send_mass_*`` still sends the old ``group_id`` filter, so the channel
adapter posts ``message/mass/sendall`` itself. A send by tag reaches every follower WeChat
holds under the tag, and it is all or nothing — so:

- at launch the tag's member list is read from WeChat (``user/tag/get``) into
  ``WeChatTagMember``; planning gives every member known to us (a contact with that openid)
  an outbox row, and THE policy counts the 4-mass-messages-a-month quota, consent,
  following, caps for each of them as for any mass send;
- the request goes by tag only when every row of the campaign is in that one request, having
  just passed the policy (nobody suppressed, held out, deferred, or sent earlier apart);
  otherwise the same rows go by openid list (``message/mass/send``), so a person over the
  quota or without consent is never reached through the tag;
- members WeChat holds but we never saw have no row: WeChat's own 4-a-month limit is all
  that protects them (we cannot count what we do not know).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import Campaign, Channel, Delivery, WeChatTagMember
from core import pii
from core.errors import DomainError
from crm.models import ContactIdentity
from wechat.client import wechat_client

log = logging.getLogger(__name__)
MAX_TAG_PAGES = 200  # 10,000 openids a page: 2,000,000 members


class WeChatUnavailable(DomainError):
    code = "wechat_unavailable"
    status_code = 503


def wechat_tag_members_sync(*, campaign: Campaign) -> int:
    """Read the campaign's tag members from WeChat and store them (replacing the last read).
    Call outside any transaction: this is network I/O. Returns the member count."""
    account = campaign.wechat_account
    client = wechat_client(account)
    openids: list[str] = []
    next_openid = None
    try:
        for _page in range(MAX_TAG_PAGES):
            res = client.tag.get_tag_users(campaign.wechat_tag_id, first_user_id=next_openid)
            page = (res.get("data") or {}).get("openid") or []
            openids += page
            next_openid = res.get("next_openid")
            if not page or not next_openid:
                break
    except Exception:  # noqa: BLE001 - any WeChat or transport error: refuse the launch
        log.warning("reading WeChat tag %s failed", campaign.wechat_tag_id, exc_info=True)
        raise WeChatUnavailable(_("读取公众号标签失败，请稍后再试")) from None
    hashes = {pii.lookup_hash("openid", openid) for openid in openids}
    with transaction.atomic():
        members = WeChatTagMember.objects.for_org(campaign.org_id).filter(
            account=account, tag_id=campaign.wechat_tag_id
        )
        members.exclude(openid_hash__in=hashes).delete()
        known = set(members.values_list("openid_hash", flat=True))
        WeChatTagMember.objects.for_org(campaign.org_id).bulk_create(
            [
                WeChatTagMember(
                    org_id=campaign.org_id,
                    account=account,
                    tag_id=campaign.wechat_tag_id,
                    openid_hash=h,
                )
                for h in hashes - known
            ]
        )
    return len(hashes)


def tag_member_contact_ids(campaign: Campaign):
    """Contacts known to be in the campaign's tag (a subquery of contact ids)."""
    hashes = WeChatTagMember.objects.for_org(campaign.org_id).filter(
        account_id=campaign.wechat_account_id, tag_id=campaign.wechat_tag_id
    )
    return (
        ContactIdentity.objects.for_org(campaign.org_id)
        .filter(
            kind="openid",
            app_id=campaign.wechat_account.appid,
            value_hash__in=hashes.values("openid_hash"),
        )
        .values("contact_id")
    )


def tag_for_request(batch_key: str, rows: list[Delivery]) -> int | None:
    """The tag id when this provider request may go by tag, else None (send by openid list):
    only when the request carries every row of its campaign (all just passed the policy)."""
    first = rows[0]
    if first.channel != Channel.WECHAT_MASS or not first.campaign_id:
        return None
    tag_id = (
        Campaign.unscoped.filter(pk=first.campaign_id)
        .values_list("wechat_tag_id", flat=True)
        .first()
    )
    if not tag_id:
        return None
    others = (
        Delivery.unscoped.filter(campaign_id=first.campaign_id)
        .exclude(batch_key=batch_key)
        .exists()
    )
    return None if others else tag_id
