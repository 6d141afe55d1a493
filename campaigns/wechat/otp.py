"""Phone binding by SMS one-time code (a service-class message).

- limits are counted BEFORE a code is created, with atomic cache counters
  (``core.ratelimit``): per phone, per client IP and per organisation;
- the answer never depends on whether the phone belongs to somebody (no enumeration):
  any well-formed phone within its limits gets "sent";
- codes are 6 random digits stored as a keyed hash, valid ``OTP_TTL_SECONDS`` and at most
  ``OTP_MAX_ATTEMPTS`` guesses; every guess is counted by one conditional UPDATE, so
  parallel guesses cannot exceed the cap; a correct code is consumed exactly once;
- a verified phone becomes an identity of the viewer's contact; when another contact
  already holds that phone, One-ID merges them (``crm_bridge.identity_attach``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections import deque
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models.wechat import PhoneOtp
from campaigns.wechat import crm_bridge
from core import ratelimit
from core.errors import DomainError, RateLimited
from crm import pii
from crm.models import Contact, IdentityKind

log = logging.getLogger(__name__)

TEMPLATE_KEY = "phone_verification"
# Console SMS backend until campaigns.services.sending is on this branch (docs/wechat.md).
CONSOLE_OUTBOX: deque = deque(maxlen=1000)


class PhoneInvalid(DomainError):
    code = "phone_invalid"


class CodeInvalid(DomainError):
    code = "code_invalid"


def normalize_phone(raw: str) -> str:
    """A mainland-China mobile number in E.164 (+8613812345678); raises PhoneInvalid."""
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        number = None
    if (
        number is None
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.region_code_for_number(number) != "CN"
        or phonenumbers.number_type(number)
        not in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        )
    ):
        raise PhoneInvalid(_("请输入有效的手机号"), fields={"phone": [_("请输入有效的手机号")]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _code_hash(otp_salt: str, code: str) -> str:
    return pii.lookup_hash("otp", f"{otp_salt}:{code}")


def phone_code_send(*, contact: Contact, phone: str, ip: str) -> dict:
    """Send a binding code to ``phone`` for the viewer ``contact``. Raises RateLimited."""
    e164 = normalize_phone(phone)
    phone_hash = pii.lookup_hash(IdentityKind.PHONE, e164)
    # Every budget is spent atomically before anything is sent; the cheapest refusals first.
    for name, identity in (
        ("otp_send_ip", f"{contact.org_id}:{ip}"),
        ("otp_send_phone", f"{contact.org_id}:{phone_hash}"),
        ("otp_send_org", str(contact.org_id)),
    ):
        if not ratelimit.hit(name, identity):
            raise RateLimited(_("发送太频繁，请稍后再试"))
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(8)
    with transaction.atomic():
        # A new code replaces the earlier ones for this phone.
        PhoneOtp.objects.for_org(contact.org_id).filter(
            contact=contact, phone_hash=phone_hash, consumed_at__isnull=True
        ).update(expires_at=timezone.now())
        PhoneOtp.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            contact=contact,
            phone_hash=phone_hash,
            phone_encrypted=pii.encrypt(e164),
            code_hash=f"{salt}${_code_hash(salt, code)}",
            expires_at=timezone.now() + timedelta(seconds=settings.OTP_TTL_SECONDS),
        )
    send_code_sms(org=contact.org, phone=e164, code=code)
    return {"sent": True, "expires_in": settings.OTP_TTL_SECONDS}


def send_code_sms(*, org, phone: str, code: str) -> None:
    """Service-class SMS through the campaigns sender; console backend until it exists."""
    try:
        from campaigns.services.sending import send_service_sms
    except ImportError:
        send_service_sms = None
    if send_service_sms is not None:
        send_service_sms(org=org, phone=phone, template_key=TEMPLATE_KEY, params={"code": code})
        return
    text = _("【千面】您的验证码是 %(code)s，5 分钟内有效。如非本人操作请忽略。") % {"code": code}
    CONSOLE_OUTBOX.append({"org": org.pk, "phone": phone, "text": text, "code": code})
    log.info("console SMS to %s: %s", pii.mask_phone(phone), text)


def phone_code_verify(*, contact: Contact, phone: str, code: str, ip: str) -> Contact:
    """Check a code and bind the phone. Returns the (possibly merged) contact."""
    e164 = normalize_phone(phone)
    if not ratelimit.hit("otp_verify_ip", f"{contact.org_id}:{ip}"):
        raise RateLimited(_("尝试太频繁，请稍后再试"))
    invalid = CodeInvalid(_("验证码错误或已过期"), fields={"code": [_("验证码错误或已过期")]})
    if not (code.isdigit() and len(code) == 6):
        raise invalid
    phone_hash = pii.lookup_hash(IdentityKind.PHONE, e164)
    now = timezone.now()
    qs = PhoneOtp.objects.for_org(contact.org_id)
    otp = (
        qs.filter(
            contact=contact,
            phone_hash=phone_hash,
            consumed_at__isnull=True,
            expires_at__gt=now,
        )
        .order_by("-id")
        .first()
    )
    if otp is None:
        raise invalid
    # Count the guess first, atomically: no parallel burst gets past the cap.
    counted = qs.filter(
        pk=otp.pk, attempts__lt=settings.OTP_MAX_ATTEMPTS, consumed_at__isnull=True
    ).update(attempts=F("attempts") + 1)
    salt, _sep, expected = otp.code_hash.partition("$")
    if not counted or not hmac.compare_digest(expected, _code_hash(salt, code)):
        raise invalid
    with transaction.atomic():
        if not qs.filter(pk=otp.pk, consumed_at__isnull=True).update(consumed_at=now):
            raise invalid  # a parallel request used it first
        survivor = crm_bridge.identity_attach(contact=contact, kind=IdentityKind.PHONE, value=e164)
    return survivor
