"""Mini-program subscribe-message consents (一次性订阅消息).

``wx.requestSubscribeMessage`` reports ``{templateId: "accept" | "reject" | "ban" |
"filter"}``; each "accept" allows exactly one send of that template to that user. A sender
calls ``mp_consent_use`` right before sending: it flips one unused row to used atomically
and answers False when there is none (then the send must not happen).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crm.models import Contact
from wechat.models import ConsentStatus, MpSubscribeConsent, WeChatAccount

ACCEPT = "accept"


def mp_subscriptions_record(
    *, account: WeChatAccount, contact: Contact, results: dict[str, str]
) -> dict[str, int]:
    """Record one unused consent per accepted template; returns unused counts per template."""
    accepted = [tmpl for tmpl, choice in results.items() if choice == ACCEPT]
    with transaction.atomic():
        MpSubscribeConsent.objects.for_org(account.org_id).bulk_create(
            [
                MpSubscribeConsent(
                    org_id=account.org_id, account=account, contact=contact, template_id=tmpl
                )
                for tmpl in accepted
            ]
        )
    return {tmpl: mp_consent_unused_count(account=account, contact=contact, template_id=tmpl)
            for tmpl in results}  # fmt: skip


def mp_consent_unused_count(*, account: WeChatAccount, contact: Contact, template_id: str) -> int:
    return (
        MpSubscribeConsent.objects.for_org(account.org_id)
        .filter(account=account, contact=contact, template_id=template_id, status="unused")
        .count()
    )


def mp_consent_use(*, account: WeChatAccount, contact: Contact, template_id: str) -> bool:
    """Consume one unused consent for a send. False when the user holds none."""
    qs = MpSubscribeConsent.objects.for_org(account.org_id)
    while True:
        row = (
            qs.filter(
                account=account,
                contact=contact,
                template_id=template_id,
                status=ConsentStatus.UNUSED,
            )
            .order_by("id")
            .values_list("pk", flat=True)
            .first()
        )
        if row is None:
            return False
        # Conditional update: two concurrent senders cannot both consume the same row.
        if qs.filter(pk=row, status=ConsentStatus.UNUSED).update(
            status=ConsentStatus.USED, used_at=timezone.now()
        ):
            return True
