"""Signed, short-lived bearer tokens for staff and viewers.

Both kinds are verified from the signature alone (no database query), which keeps the
WebSocket connect path and join storms off the database. Staff tokens carry a
generation that the HTTP path compares with ``Membership.token_generation`` to revoke.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

STAFF_PREFIX = "s."
VIEWER_PREFIX = "v."
_STAFF_SALT = "qianmian.staff-token"
_VIEWER_SALT = "qianmian.viewer-token"


@dataclass(frozen=True)
class StaffClaims:
    user_id: int
    org_id: int
    role: str
    generation: int

    kind = "staff"


@dataclass(frozen=True)
class ViewerClaims:
    org_id: int
    contact_id: int
    device: str
    room_id: int | None = None
    nickname: str = ""

    kind = "viewer"


class InvalidToken(Exception):
    """Malformed, tampered with or expired."""


def issue_staff_token(*, membership) -> str:
    payload = {
        "u": membership.user_id,
        "o": membership.org_id,
        "r": membership.role,
        "g": membership.token_generation,
        "n": secrets.token_hex(4),
    }
    return STAFF_PREFIX + signing.dumps(payload, salt=_STAFF_SALT, compress=True)


def issue_viewer_token(
    *, org_id: int, contact_id: int, device: str, room_id: int | None = None, nickname: str = ""
) -> str:
    payload = {"o": org_id, "c": contact_id, "d": device, "r": room_id, "n": nickname}
    return VIEWER_PREFIX + signing.dumps(payload, salt=_VIEWER_SALT, compress=True)


def parse_token(raw: str) -> StaffClaims | ViewerClaims:
    """Verify a token and return its claims. Raises InvalidToken."""
    try:
        if raw.startswith(STAFF_PREFIX):
            data = signing.loads(
                raw[len(STAFF_PREFIX) :], salt=_STAFF_SALT, max_age=settings.STAFF_TOKEN_MAX_AGE
            )
            return StaffClaims(
                user_id=int(data["u"]),
                org_id=int(data["o"]),
                role=str(data["r"]),
                generation=int(data["g"]),
            )
        if raw.startswith(VIEWER_PREFIX):
            data = signing.loads(
                raw[len(VIEWER_PREFIX) :], salt=_VIEWER_SALT, max_age=settings.VIEWER_TOKEN_MAX_AGE
            )
            return ViewerClaims(
                org_id=int(data["o"]),
                contact_id=int(data["c"]),
                device=str(data.get("d") or ""),
                room_id=int(data["r"]) if data.get("r") is not None else None,
                nickname=str(data.get("n") or ""),
            )
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise InvalidToken(str(exc)) from exc
    raise InvalidToken("unknown token kind")
