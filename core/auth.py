"""DRF authentication for both token kinds, and helpers to read who is calling."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from core.tokens import InvalidToken, StaffClaims, ViewerClaims, parse_token


class Viewer:
    """The request.user of a viewer token: authenticated, but never a staff user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_viewer = True
    pk = None
    id = None

    def __init__(self, claims: ViewerClaims):
        self.claims = claims
        self.org_id = claims.org_id
        self.contact_id = claims.contact_id

    def __str__(self) -> str:
        return f"viewer:{self.contact_id}"


def _token_from_header(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    if not header:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() not in {"token", "bearer"}:
        raise exceptions.AuthenticationFailed(_("认证头格式应为 Token <token>"))
    return parts[1]


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = _token_from_header(request)
        if raw is None:
            return None
        return authenticate_token(raw)

    def authenticate_header(self, request):
        return "Token"


def authenticate_token(raw: str):
    """(user, claims) for a raw token; raises AuthenticationFailed."""
    try:
        claims = parse_token(raw)
    except InvalidToken:
        raise exceptions.AuthenticationFailed(_("令牌无效或已过期")) from None
    if isinstance(claims, ViewerClaims):
        return Viewer(claims), claims
    user = (
        get_user_model()
        .objects.select_related("membership", "membership__org")
        .filter(pk=claims.user_id, is_active=True)
        .first()
    )
    membership = getattr(user, "membership", None) if user else None
    if (
        membership is None
        or membership.org_id != claims.org_id
        or membership.token_generation != claims.generation
        or not membership.org.is_active
    ):
        raise exceptions.AuthenticationFailed(_("令牌无效或已过期"))
    return user, claims


def membership_of(request):
    """The caller's Membership, or None for viewers and anonymous callers."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "is_viewer", False) or not user.is_authenticated:
        return None
    try:
        return user.membership
    except Exception:  # noqa: BLE001 - RelatedObjectDoesNotExist for users without one
        return None


def viewer_of(request) -> Viewer | None:
    user = getattr(request, "user", None)
    return user if getattr(user, "is_viewer", False) else None


def org_id_of(request) -> int | None:
    viewer = viewer_of(request)
    if viewer is not None:
        return viewer.org_id
    membership = membership_of(request)
    return membership.org_id if membership else None


__all__ = [
    "TokenAuthentication",
    "Viewer",
    "StaffClaims",
    "ViewerClaims",
    "membership_of",
    "viewer_of",
    "org_id_of",
]
