"""The coupon reconciler on PostgreSQL + Redis (issue 20): set-based per batch, idempotent
when a batch is replayed (a crash between the commit and the log's trim), and its claims'
CRM events, clip and coupon counters exactly once.

Claims go through the real claim service (Redis backend: Lua decision, rows written before
the answer), then ``coupon_reconcile`` follows the log up."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Event
from livecommerce.models import Coupon, CouponClaim, ProductClip
from livecommerce.services.coupons import coupon_claim, coupon_reconcile
from livecommerce.services.coupons.backends import redis as redis_backend
from livecommerce.services.coupons.backends.redis import redis_load
from tests.factories import ContactFactory, ProductFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_claims(settings):
    settings.COUPON_CLAIM_BACKEND = "redis"
    settings.COUPON_REDIS_PREFIX = f"qmreconcile-{uuid.uuid4().hex[:8]}"
    yield
    client = redis_backend.sredis_client()
    keys = list(client.scan_iter(f"{settings.COUPON_REDIS_PREFIX}:*"))
    if keys:
        client.delete(*keys)


def _claimed_coupon(host_alice, viewers: int, *, stock: int):
    room = RoomFactory(streamer=host_alice.profile)
    clip = ProductClip.unscoped.create(
        org=room.org, room=room, product=ProductFactory(org=room.org), pinned_at=timezone.now()
    )
    coupon = CouponFactory(room=room, released=True, stock=stock)
    redis_load(coupon)
    contacts = [ContactFactory(org=room.org) for _ in range(viewers)]
    for contact in contacts:
        coupon_claim(
            org_id=room.org_id, coupon_id=coupon.pk, contact_id=contact.pk, clip_id=clip.pk
        )
    return coupon, clip, contacts


def _claim_events(coupon: Coupon) -> int:
    return Event.unscoped.filter(type="coupon.claim", props__coupon=coupon.pk).count()


def test_a_replayed_batch_records_nothing_twice(redis_claims, host_alice, monkeypatch):
    coupon, clip, contacts = _claimed_coupon(host_alice, 12, stock=20)
    assert CouponClaim.unscoped.filter(coupon=coupon, crm_recorded=False).count() == 12
    # A crash after the first batch committed and before the log was trimmed: the next run
    # replays the same entries.
    client = redis_backend.sredis_client()

    def crash(self, *args):
        raise ConnectionError("killed before the trim")

    monkeypatch.setattr(type(client), "ltrim", crash)
    with pytest.raises(ConnectionError):
        coupon_reconcile(batch=5)
    monkeypatch.undo()
    assert _claim_events(coupon) == 5
    coupon_reconcile(batch=5)
    coupon_reconcile(batch=5)

    assert _claim_events(coupon) == 12
    assert not CouponClaim.unscoped.filter(coupon=coupon, crm_recorded=False).exists()
    clip.refresh_from_db()
    coupon.refresh_from_db()
    assert (clip.claims, coupon.claimed) == (12, 12)
    event = Event.unscoped.get(type="coupon.claim", contact=contacts[0], props__coupon=coupon.pk)
    assert event.props == {"coupon": coupon.pk, "name": coupon.name, "clip": clip.pk}
    assert event.room_id == coupon.room_id
    assert event.key == f"coupon.claim:{coupon.pk}:{contacts[0].pk}:1"


def test_a_log_entry_without_its_row_is_written_by_the_reconciler(redis_claims, host_alice):
    coupon, clip, contacts = _claimed_coupon(host_alice, 3, stock=5)
    # The answer path's INSERT did not land (a claim answered with an error): the log has it.
    lost = CouponClaim.unscoped.get(coupon=coupon, contact=contacts[1])
    lost.delete()

    assert coupon_reconcile() == 1

    again = CouponClaim.unscoped.get(coupon=coupon, contact=contacts[1])
    assert (again.code, again.slot, again.clip_id) == (lost.code, lost.slot, clip.pk)
    assert again.crm_recorded
    coupon.refresh_from_db()
    assert coupon.claimed == 3
    assert _claim_events(coupon) == 3


def test_statements_per_batch_do_not_grow_with_the_batch(redis_claims, host_alice, settings):
    """Set-based: the reconciler's statements for a batch of 40 claims are as many as for a
    batch of 4 (no statement per claim, on the claim side or the CRM side)."""

    def statements(viewers: int) -> int:
        # A key prefix of its own: the run sees this coupon's log only.
        settings.COUPON_REDIS_PREFIX = f"qmreconcile-{uuid.uuid4().hex[:8]}"
        coupon, _clip, _contacts = _claimed_coupon(host_alice, viewers, stock=viewers)
        with CaptureQueriesContext(connection) as queries:
            coupon_reconcile(batch=1000)
        assert _claim_events(coupon) == viewers
        return len(queries)

    statements(4)  # memos warmed (scoring rules, journey triggers): counted alike below
    assert statements(40) == statements(4)


def test_a_claim_the_reconciler_wrote_first_is_still_answered_yours(redis_claims, host_alice):
    """The reconciler may write a logged claim while the answer path's own INSERT is in
    flight: that INSERT then skips the row, and the claim must still count as recorded
    (answered 201), not 503 ``claim_retry`` for a coupon the viewer holds."""
    import time

    from livecommerce.services.coupons.claim import coroutine_run

    coupon, _clip, _contacts = _claimed_coupon(host_alice, 1, stock=2)
    row = CouponClaim.unscoped.get(coupon=coupon)
    granted = [(row.contact_id, row.nth, row.slot, row.code, None)]

    recorded = coroutine_run(
        redis_backend._record_claims(coupon.org_id, coupon.pk, int(time.time()), granted)
    )

    assert recorded == {row.code}
