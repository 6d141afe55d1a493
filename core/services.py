"""Staff sign-in and sign-out (viewer sessions: livecommerce.services.viewers)."""

from __future__ import annotations

import logging

from django.contrib.auth import authenticate, get_user_model
from django.db.models import F
from django.utils.translation import gettext as _

from core import ratelimit
from core.errors import DomainError
from core.models import AuditLog, Membership
from core.tokens import issue_staff_token

log = logging.getLogger(__name__)


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = 400


class SignInLocked(DomainError):
    code = "sign_in_locked"
    status_code = 429


def staff_sign_in(*, username: str, password: str, ip: str | None = None) -> tuple[str, Membership]:
    """A signed staff token for valid credentials of a user with a membership.

    Lockout: after RATE_LIMITS["auth_fail_account"] failures for one username or
    ["auth_fail_ip"] failures from one address in the window, every attempt is refused
    (429, the password not even checked) until the window ends. Counters are atomic cache
    increments (INCR on Redis); each failure and each lock is audited in the account's org.
    """
    account = username.strip().lower()[:150]
    address = ip or "unknown"
    # Count the attempt as a failure *before* checking the password and give the slot back
    # on success. Checking "spent?" first and counting after the check let every one of
    # 200 parallel guesses through the check before any failure was counted (issue 18).
    slots = [("auth_fail_account", account), ("auth_fail_ip", address)]
    granted = [slot for slot in slots if ratelimit.hit(*slot)]
    if len(granted) < len(slots):
        for slot in granted:  # a refused attempt is no failure of the other identity
            ratelimit.release(*slot)
        raise SignInLocked(_("登录失败次数过多，请稍后再试"))
    user = authenticate(username=username, password=password)
    membership = getattr(user, "membership", None) if user else None
    if membership is None or not membership.org.is_active:
        locked = ratelimit.spent("auth_fail_account", account) or ratelimit.spent(
            "auth_fail_ip", address
        )
        _audit_failure(username=username, ip=ip, locked=locked)
        raise InvalidCredentials(_("用户名或密码错误"))
    for slot in slots:
        ratelimit.release(*slot)
    return issue_staff_token(membership=membership), membership


def _audit_failure(*, username: str, ip: str | None, locked: bool) -> None:
    target = (
        Membership.objects.select_related("org")
        .filter(user__in=get_user_model().objects.filter(username=username))
        .first()
    )
    if target is None:
        log.info("sign-in failed for an unknown account (locked=%s)", locked)
        return
    AuditLog.objects.for_org(target.org_id).create(
        org_id=target.org_id,
        actor=None,
        action="auth.sign_in_locked" if locked else "auth.sign_in_failed",
        target_type="user",
        target_id=str(target.user_id),
        ip=ip,
    )


def staff_sign_out(*, membership: Membership) -> None:
    """Revoke every token the user holds."""
    Membership.objects.filter(pk=membership.pk).update(token_generation=F("token_generation") + 1)
