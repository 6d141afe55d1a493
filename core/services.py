"""Staff sign-in and sign-out (viewer sessions: livecommerce.services.viewers)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.db.models import F
from django.utils.translation import gettext as _

from core.errors import DomainError
from core.models import Membership
from core.tokens import issue_staff_token


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = 400


def staff_sign_in(*, username: str, password: str) -> tuple[str, Membership]:
    """A signed staff token for valid credentials of a user with a membership."""
    user = authenticate(username=username, password=password)
    membership = getattr(user, "membership", None) if user else None
    if membership is None or not membership.org.is_active:
        raise InvalidCredentials(_("用户名或密码错误"))
    return issue_staff_token(membership=membership), membership


def staff_sign_out(*, membership: Membership) -> None:
    """Revoke every token the user holds."""
    Membership.objects.filter(pk=membership.pk).update(token_generation=F("token_generation") + 1)
