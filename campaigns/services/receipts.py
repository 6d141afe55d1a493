"""Provider receipts (delivery reports) and uplink replies (opt-outs).

Receipts settle the outbox: ``sent``/``sending``/``unknown`` rows named by a receipt become
``delivered`` (or ``failed``) — this is how rows caught mid-send are reconciled. Matching
uses the provider's message id, else the batch key we sent (Tencent ``ext`` =
SessionContext, Alibaba ``out_id`` = OutId) plus the phone's keyed hash.

Uplink TD / T / N / R / 退订 records an opt-out per phone and signature and withdraws
``sms_marketing`` consent through ``crm.services.consent`` at once (the product's bar is within
a minute; this is synchronous with the hook).
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from campaigns.models import Delivery, DeliveryStatus, SmsOptOut, SmsReply
from core import pii
from core.models import Organization
from crm.models import Contact
from crm.services.consent import consent_withdraw
from crm.services.contacts import contact_find_by_identity
from crm.services.events import event_record

OPT_OUT_WORDS = {"TD", "T", "N", "R", "退订", "退订TD", "拒收", "取消"}
_STRIP = re.compile(r"[\s\.,!。，！、]+")

SETTLEABLE = (
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.UNKNOWN,
)


def is_opt_out(text: str) -> bool:
    return _STRIP.sub("", text or "").upper() in OPT_OUT_WORDS


def receipt_apply(
    *,
    org: Organization,
    phone: str = "",
    delivered: bool,
    provider_message_id: str = "",
    batch_key: str = "",
    delivery_id: int | None = None,
    error: str = "",
) -> int:
    """Apply one delivery report. Returns the number of rows it settled (0 for a replay)."""
    qs = Delivery.objects.for_org(org).filter(status__in=SETTLEABLE)
    if delivery_id is not None:
        qs = qs.filter(pk=delivery_id)
    elif batch_key and phone:
        # Both providers echo the key we sent (Tencent ``ext`` = SessionContext, Alibaba
        # ``out_id`` = OutId); it is indexed, provider message ids are not.
        qs = qs.filter(batch_key=batch_key, to_hash=pii.lookup_hash("phone", phone))
    else:
        return 0
    now = timezone.now()
    rows = list(qs.values_list("pk", "contact_id", "sent_at"))
    if not rows:
        return 0
    pks = [pk for pk, _c, _s in rows]
    if delivered:
        Delivery.objects.for_org(org).filter(pk__in=pks).update(
            status=DeliveryStatus.DELIVERED, delivered_at=now, updated_at=now
        )
        Delivery.objects.for_org(org).filter(pk__in=pks, sent_at__isnull=True).update(sent_at=now)
        _record_delivered(org, rows)
    else:
        Delivery.objects.for_org(org).filter(pk__in=pks).update(
            status=DeliveryStatus.FAILED, error=error[:255] or "undelivered", updated_at=now
        )
    return len(pks)


def _record_delivered(org: Organization, rows) -> None:
    contacts = {c.pk: c for c in Contact.objects.for_org(org).filter(pk__in={r[1] for r in rows})}
    for pk, contact_id, _sent in rows:
        if contact_id in contacts:
            event_record(
                contact=contacts[contact_id],
                type="message.delivered",
                props={"delivery": pk},
                key=f"delivered:{pk}",
            )


@transaction.atomic
def sms_reply_record(
    *, org: Organization, provider: str, phone: str, text: str, sign_name: str
) -> SmsReply:
    """Store an uplink SMS; an opt-out word stops marketing SMS to that phone under that
    signature and withdraws the person's SMS marketing consent."""
    phone_hash = pii.lookup_hash("phone", phone)
    opt_out = is_opt_out(text)
    reply = SmsReply.objects.for_org(org).create(
        org=org,
        provider=provider,
        phone_hash=phone_hash,
        sign_name=sign_name,
        text=text[:500],
        is_optout=opt_out,
    )
    if opt_out:
        SmsOptOut.objects.for_org(org).get_or_create(
            org=org,
            phone_hash=phone_hash,
            sign_name=sign_name,
            defaults={"text": text[:140], "provider": provider},
        )

        contact = contact_find_by_identity(org=org, kind="phone", value=phone)
        if contact is not None:
            consent_withdraw(
                contact=contact,
                purpose="sms_marketing",
                source=f"sms_reply:{provider}",
                evidence={"text": text[:140], "sign_name": sign_name, "reply": reply.pk},
            )
    return reply
