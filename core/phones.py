"""The one phone rule: a mainland-China mobile number, kept as the CRM stores phones (11 digits,
13812345678).

Every way a phone comes in goes through ``normalize_phone`` — a viewer binding one by SMS code
or through the mini-program (wechat), a CSV import and the ingest API (crm), a reservation
reminder (livecommerce), a staff contact (campaigns) — so a number one path accepts another
cannot refuse. The rule is libphonenumber's (``phonenumbers``): valid, Chinese, mobile; a
``+86``/``86``/``0086`` prefix and spaces or dashes are accepted.
"""

from __future__ import annotations

import phonenumbers
from django.utils.translation import gettext as _

from core.errors import DomainError


class PhoneInvalid(DomainError):
    code = "phone_invalid"


def normalize_phone(raw: str) -> str:
    """A mainland-China mobile number as the CRM stores phones (11 digits, 13812345678);
    raises PhoneInvalid."""
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
    return str(number.national_number)
