"""One phone rule (core.phones): the CRM's identities, imports and reminders accept exactly
the numbers the viewer's SMS binding accepts."""

from __future__ import annotations

import pytest

from core.phones import PhoneInvalid, normalize_phone
from crm.models import IdentityKind
from crm.services.identity import identity_normalise


@pytest.mark.parametrize(
    "raw",
    ["13812345678", "+86 138-1234-5678", "8613812345678", "008613812345678", "138 1234 5678"],
)
def test_a_mainland_mobile_is_kept_as_eleven_digits_on_every_path(raw):
    assert normalize_phone(raw) == "13812345678"
    assert identity_normalise(IdentityKind.PHONE, raw) == "13812345678"


@pytest.mark.parametrize(
    "raw",
    [
        "12012345678",  # 11 digits starting with 1: no such mobile prefix
        "10012345678",
        "01012345678",  # a Beijing landline
        "+1 415 555 0100",  # not Chinese
        "1381234567",  # too short
    ],
)
def test_a_number_the_sms_binding_refuses_is_refused_by_the_crm_too(raw):
    with pytest.raises(PhoneInvalid):
        normalize_phone(raw)
    with pytest.raises(PhoneInvalid):
        identity_normalise(IdentityKind.PHONE, raw)
