"""Service messages to a staff member (the owner of a hot lead) over WeChat or SMS.

A staff member leaves a work phone and/or their openid under the org's official account
(``StaffContact``, encrypted like contact PII). A notification goes out as ONE service-class
message through the outbox, the one policy check and the one sender: a WeChat template
message when the member currently follows the account (template messages reach followers
only), else an SMS on the service template. The delivery row is the record; its key makes
a replayed step send nothing twice.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import (
    ApprovalStatus,
    Channel,
    Delivery,
    MessageClass,
    MessageTemplate,
    StaffContact,
)
from campaigns.services.sending import NoSmsAccount, sms_account_default
from core import pii
from core.errors import DomainError
from core.tasks import enqueue
from wechat.models import WeChatFollower
from wechat.otp import normalize_phone

# Template keys the shipped hot-lead journey uses (seeded by campaigns.demo).
DEFAULT_SMS_TEMPLATE = "owner_hot_lead_sms"
DEFAULT_WECHAT_TEMPLATE = "owner_hot_lead_wechat"


class InvalidStaffContact(DomainError):
    code = "invalid_staff_contact"


def mask_openid(openid: str) -> str:
    """``oAb1****xY9z``: enough for a member to recognise their binding, useless to others."""
    return f"{openid[:4]}****{openid[-4:]}" if len(openid) > 8 else "****"


def staff_contact_set(
    *,
    org_id: int,
    user,
    phone: str | None = None,
    wechat_account=None,
    openid: str | None = None,
) -> StaffContact:
    """Record where ``user`` wants owner notifications. Empty strings clear a contact point;
    None leaves it unchanged. The phone must be a mainland mobile number."""

    with transaction.atomic():
        row, _created = (
            StaffContact.objects.for_org(org_id)
            .select_for_update()
            .get_or_create(org_id=org_id, user=user)
        )
        if phone is not None:
            if phone:
                normalised = normalize_phone(phone)  # raises PhoneInvalid naming the field
                row.phone_encrypted = pii.encrypt(normalised)
                row.phone_hash = pii.lookup_hash("phone", normalised)
                row.phone_masked = pii.mask_phone(normalised)
            else:
                row.phone_encrypted = row.phone_hash = row.phone_masked = ""
        if openid is not None:
            if openid:
                if wechat_account is None:
                    raise InvalidStaffContact(
                        _("请选择公众号"), fields={"wechat_account": [_("请选择公众号")]}
                    )
                row.wechat_account = wechat_account
                row.openid_encrypted = pii.encrypt(openid)
                row.openid_hash = pii.lookup_hash("openid", openid)
                row.openid_masked = mask_openid(openid)
            else:
                row.wechat_account = None
                row.openid_encrypted = row.openid_hash = row.openid_masked = ""
        row.save()
    return row


def follows_account(row: StaffContact) -> bool:
    return bool(
        row.wechat_account_id
        and row.openid_hash
        and WeChatFollower.objects.for_org(row.org_id)
        .filter(account_id=row.wechat_account_id, openid_hash=row.openid_hash, subscribed=True)
        .exists()
    )


def _template(org_id: int, key: str, channel: str) -> MessageTemplate | None:
    return (
        MessageTemplate.objects.for_org(org_id)
        .filter(
            key=key,
            channel=channel,
            message_class=MessageClass.SERVICE,
            approval_status=ApprovalStatus.APPROVED,
        )
        .first()
    )


def owner_message_send(
    *,
    org_id: int,
    user,
    key: str,
    params: dict,
    sms_template: str = DEFAULT_SMS_TEMPLATE,
    wechat_template: str = DEFAULT_WECHAT_TEMPLATE,
) -> Delivery | None:
    """Queue one service message to ``user``: WeChat template if they follow the org's
    official account, else SMS. Returns the delivery (the existing one for a replayed
    ``key``), or None when the member left no usable contact point or the org has no
    approved service template for it. Sent right after the caller's transaction commits."""

    existing = Delivery.objects.for_org(org_id).filter(key=key).first()
    if existing is not None:
        return existing
    row = StaffContact.objects.for_org(org_id).filter(user=user).first()
    if row is None:
        return None
    fields: dict = {}
    wechat = _template(org_id, wechat_template, Channel.WECHAT_TEMPLATE)
    if wechat is not None and follows_account(row):
        fields = {
            "channel": Channel.WECHAT_TEMPLATE,
            "template": wechat,
            "wechat_account_id": row.wechat_account_id,
            "to_encrypted": row.openid_encrypted,
            "to_hash": row.openid_hash,
        }
    elif row.phone_hash:
        sms = _template(org_id, sms_template, Channel.SMS)
        if sms is None:
            return None
        try:
            account = sms.provider_account or sms_account_default(org_id)
        except NoSmsAccount:
            return None
        fields = {
            "channel": Channel.SMS,
            "template": sms,
            "account": account,
            "to_encrypted": row.phone_encrypted,
            "to_hash": row.phone_hash,
        }
    if not fields:
        return None
    delivery = Delivery.objects.for_org(org_id).create(
        org_id=org_id,
        contact=None,  # the recipient is staff, not a lead: no consent or cap applies
        message_class=MessageClass.SERVICE,
        key=key,
        params={k: str(v) for k, v in params.items()},
        due_at=timezone.now(),
        **fields,
    )
    enqueue("campaigns.send_deliveries", [delivery.pk])
    return delivery
