"""The honest answer to "will my reservation's reminder reach me?" (issue 15).

A viewer who reserves is told 开播前提醒你 only when a reminder can actually be delivered: an
active ``reservation.due`` journey sends one, on a channel the viewer has an address for, and
THE send policy (``policy.candidates_evaluate``) would let it through now. The answer names
the phone it goes to (masked) or why nothing can be sent. Registered on the rooms' reservation service by
``campaigns.services.journeys.connect`` (livecommerce may not import campaigns).
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from campaigns.models import Channel, Journey, MessageTemplate
from campaigns.services import policy
from campaigns.services.sending import NoSmsAccount, sms_account_default
from core import pii
from crm.models import ContactIdentity


def _reminder_templates(org_id: int) -> list[MessageTemplate]:
    keys = []
    for steps in (
        Journey.objects.for_org(org_id)
        .filter(is_active=True, trigger_event="reservation.due")
        .values_list("steps", flat=True)
    ):
        keys += [s.get("template") for s in steps or [] if s.get("type") == "send"]
    by_key = {t.key: t for t in MessageTemplate.objects.for_org(org_id).filter(key__in=keys)}
    return [by_key[k] for k in keys if k in by_key]


def _answer(deliverable: bool, channel, reason: str, message: str, to=None) -> dict:
    return {
        "deliverable": deliverable,
        "channel": channel,
        "to": to,
        "reason": reason,
        "message": message,
    }


def reservation_reminder_status(reservation) -> dict:
    """See the module docstring; keys: deliverable, channel, to, reason, message."""

    templates = _reminder_templates(reservation.org_id)
    if not templates:
        return _answer(False, None, "no_reminder_journey", _("已预约，但目前无法发送开播提醒"))
    sms = next((t for t in templates if t.channel == Channel.SMS), None)
    if reservation.remind_channel in ("mp_subscribe", "wechat_oa") or sms is None:
        # The reminder journey reaches people by SMS only today: a WeChat choice is recorded
        # but cannot be honoured, and the page must not promise it.
        return _answer(
            False,
            reservation.remind_channel or None,
            "channel_unavailable",
            _("已预约。暂不能通过微信提醒，留下手机号，开播前才能提醒你"),
        )
    identity = (
        ContactIdentity.objects.for_org(reservation.org_id)
        .filter(contact_id=reservation.contact_id, kind="phone")
        .order_by("id")
        .first()
    )  # the phone the journey's send step will use
    if identity is None:
        return _answer(False, None, "no_address", _("已预约。留下手机号，开播前才能提醒你"))
    try:
        account = sms.provider_account or sms_account_default(reservation.org_id)
    except NoSmsAccount:
        return _answer(False, "sms", "no_sms_account", _("已预约，但目前无法发送开播提醒"))
    candidate = policy.Candidate(
        org_id=reservation.org_id,
        contact_id=reservation.contact_id,
        channel=Channel.SMS,
        template=sms,
        to_hash=identity.value_hash,
        sign_name=account.sign_name,
        row_class=policy.message_class_for(
            template=sms, origin=policy.JOURNEY, trigger="reservation.due"
        ),
    )
    decision = policy.candidates_evaluate([candidate])[0]
    if decision.action == "suppress":
        return _answer(False, "sms", decision.reason, _("已预约，但目前无法给你发送开播提醒短信"))
    masked = pii.mask_phone(pii.decrypt(identity.value_encrypted))
    return _answer(
        True,
        "sms",
        "",
        _("已预约，开播前短信提醒你（%(phone)s）") % {"phone": masked},
        to=masked,
    )
