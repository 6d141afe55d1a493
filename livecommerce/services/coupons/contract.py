"""The claim contract: what a claim answers, whatever the backend.

A claim answers a ``ClaimReceipt`` (201), or raises ``SoldOut`` / ``LimitReached`` (409),
``NotReleased`` / ``Expired`` (403), ``NotFound`` (404, another organisation's coupon) or
``ClaimNotRecorded`` (503, the Redis backend only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, DomainError, Forbidden, NotFound
from livecommerce.models import Coupon


class SoldOut(Conflict):
    code = "sold_out"


class LimitReached(Conflict):
    code = "limit_reached"


class NotReleased(Forbidden):
    code = "coupon_not_released"


class Expired(Forbidden):
    code = "coupon_expired"


class ClaimNotRecorded(DomainError):
    """Redis granted a slot the database refused (Redis lost its data while an earlier claim
    for that slot was still being written): the viewer is asked to try again, never told
    the coupon is theirs."""

    code = "claim_retry"
    status_code = 503


@dataclass(frozen=True)
class ClaimReceipt:
    coupon: int
    contact: int
    nth: int
    slot: int
    code: str
    remaining: int

    def as_dict(self) -> dict:
        return asdict(self)


def backend() -> str:
    """The configured claim backend: ``db``, ``pg`` or ``redis`` (``COUPON_CLAIM_BACKEND``)."""
    return settings.COUPON_CLAIM_BACKEND


def classify(coupon: Coupon | None, org_id: int, mine: int) -> DomainError:
    """Why a claim was refused, given the coupon (None: not found) and the viewer's count."""
    if coupon is None or coupon.org_id != org_id:
        return NotFound(_("优惠券不存在"))
    if coupon.released_at is None:
        return NotReleased(_("优惠券尚未发放"))
    if coupon.valid_until <= timezone.now():
        return Expired(_("优惠券已过期"))
    if mine >= coupon.per_viewer_limit:
        return LimitReached(_("已达领取上限"))
    return SoldOut(_("优惠券已抢光"))
