"""Personal data at rest: Fernet encryption (with key rotation) and a keyed hash for look-ups.

Phones, openids and unionids are stored encrypted; equality look-ups use an HMAC-SHA256 of
the normalised value under a separate key, so the database alone reveals nothing.
Keys come from PII_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first) and
PII_HASH_KEY; without them both are derived from SECRET_KEY (fine for the embedded demo).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _derive(label: str) -> bytes:
    return hashlib.sha256(f"{label}:{settings.SECRET_KEY}".encode()).digest()


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = [k for k in getattr(settings, "PII_ENCRYPTION_KEYS", []) if k]
    if not keys:
        keys = [base64.urlsafe_b64encode(_derive("qianmian-pii-fernet")).decode()]
    return MultiFernet([Fernet(k) for k in keys])


@lru_cache(maxsize=1)
def _hash_key() -> bytes:
    key = getattr(settings, "PII_HASH_KEY", "")
    return key.encode() if key else _derive("qianmian-pii-hash")


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


def lookup_hash(kind: str, value: str) -> str:
    """Keyed hash of a normalised identity value; the kind is mixed in so values never collide."""
    return hmac.new(_hash_key(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def rotate(token: str) -> str:
    """Re-encrypt under the newest key (used by the key-rotation command)."""
    return _fernet().rotate(token.encode()).decode()


def mask_phone(phone: str) -> str:
    """138****5678 style mask; other lengths keep the first 3 and last 2 characters."""
    digits = phone[-11:] if len(phone) >= 11 else phone
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 5:
        return f"{digits[:3]}{'*' * (len(digits) - 5)}{digits[-2:]}"
    return "*" * len(digits)
