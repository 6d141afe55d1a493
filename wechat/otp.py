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
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core import pii, ratelimit
from core.errors import DomainError, RateLimited
from core.phones import normalize_phone
from crm.models import Contact, IdentityKind
from wechat import crm_bridge, extensions
from wechat.models import PhoneOtp

log = logging.getLogger(__name__)

# The organisation's service-class SMS template with a {code} parameter (campaigns demo: otp).
TEMPLATE_KEY = "otp"


class CodeInvalid(DomainError):
    code = "code_invalid"


class SmsUnavailable(DomainError):
    code = "sms_unavailable"
    status_code = 503


def _code_hash(otp_salt: str, code: str) -> str:
    return pii.lookup_hash("otp", f"{otp_salt}:{code}")


def phone_code_send(*, contact: Contact, phone: str, ip: str) -> dict:
    """Send a binding code to ``phone`` for the viewer ``contact``. Raises RateLimited."""
    phone = normalize_phone(phone)
    phone_hash = pii.lookup_hash(IdentityKind.PHONE, phone)
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
        otp = PhoneOtp.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            contact=contact,
            phone_hash=phone_hash,
            phone_encrypted=pii.encrypt(phone),
            code_hash=f"{salt}${_code_hash(salt, code)}",
            expires_at=timezone.now() + timedelta(seconds=settings.OTP_TTL_SECONDS),
        )
        # Service class: through the campaigns outbox, sent once this transaction commits.
        try:
            extensions.service_sms_send.get()(
                org=contact.org,
                phone=phone,
                template_key=TEMPLATE_KEY,
                params={"code": code},
                key=f"otp:{otp.pk}",
            )
        except LookupError:
            log.error("org %s has no service SMS template %r", contact.org_id, TEMPLATE_KEY)
            raise SmsUnavailable(_("短信服务暂不可用，请稍后再试")) from None
    return {"sent": True, "expires_in": settings.OTP_TTL_SECONDS}


def phone_code_verify(*, contact: Contact, phone: str, code: str, ip: str) -> Contact:
    """Check a code and bind the phone. Returns the (possibly merged) contact."""
    phone = normalize_phone(phone)
    if not ratelimit.hit("otp_verify_ip", f"{contact.org_id}:{ip}"):
        raise RateLimited(_("尝试太频繁，请稍后再试"))
    invalid = CodeInvalid(_("验证码错误或已过期"), fields={"code": [_("验证码错误或已过期")]})
    if not (code.isdigit() and len(code) == 6):
        raise invalid
    phone_hash = pii.lookup_hash(IdentityKind.PHONE, phone)
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
        survivor = crm_bridge.identity_attach(contact=contact, kind=IdentityKind.PHONE, value=phone)
    return survivor
