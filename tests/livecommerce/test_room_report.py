"""战报 (GET /api/v1/rooms/{id}/report): every figure equals a count of raw rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Contact, Event
from crm.services.events import event_record
from livecommerce.models import (
    ChatMessage,
    CouponClaim,
    Invite,
    InviteCredit,
    OnlineSample,
    ProductClip,
)
from livecommerce.selectors_report import room_report_recall
from tests.factories import ContactFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory, RoomProductFactory


def broadcast(host) -> dict:
    """An ended one-hour broadcast with two products explained, five viewers, clicks,
    claims, leads, chat, online samples and an invite. Returns what the checks need."""
    t0 = timezone.now() - timedelta(hours=2)

    def at(minutes: float):
        return t0 + timedelta(minutes=minutes)

    room = RoomFactory(streamer=host.profile, status="ended", started_at=t0, ended_at=at(60))
    org = room.org
    p1 = RoomProductFactory(room=room, position=0).product
    p2 = RoomProductFactory(room=room, position=1).product

    def clip(product, start, end):
        return ProductClip.unscoped.create(
            org=org, room=room, product=product, pinned_at=at(start), unpinned_at=at(end)
        )

    c1, c2, c3 = clip(p1, 5, 15), clip(p2, 20, 30), clip(p1, 40, 45)
    a, b, c, d, e = (ContactFactory(org=org, nickname=n) for n in "ABCDE")

    def visit(contact, *marks):
        for kind, minute in marks:
            event_record(
                contact=contact, type=f"room.{kind}", room_id=room.pk, occurred_at=at(minute)
            )

    visit(a, ("join", 1), ("leave", 18))  # sees p1 (first span)
    visit(b, ("join", 16), ("leave", 35))  # sees p2
    # Two tabs: the visit lasts until the last tab closes, so C sees both products.
    visit(c, ("join", 2), ("join", 3), ("leave", 4), ("leave", 50))
    visit(d, ("join", 31), ("leave", 39))  # between the spans: sees nothing
    visit(e, ("join", 41))  # never left: the visit runs to the room's end, sees p1
    for contact, product in ((a, p1), (a, p1), (c, p1), (b, p2)):
        event_record(
            contact=contact,
            type="product.click",
            room_id=room.pk,
            props={"product": product.pk, "name": product.name, "clip": None},
            occurred_at=at(10),
        )
    # A click in another room of the same organisation stays out.
    elsewhere = RoomFactory(streamer=host.profile)
    event_record(contact=a, type="product.click", room_id=elsewhere.pk, props={"product": p1.pk})

    k1 = CouponFactory(room=room, stock=10, released=True)
    k2 = CouponFactory(room=room, stock=5, name="无门槛5元", released=True)
    slots = iter(range(1, 100))

    def claim(coupon, contact, clip_, redeemed=False):
        slot = next(slots)
        CouponClaim.unscoped.create(
            org=org,
            coupon=coupon,
            contact=contact,
            slot=slot,
            code=f"{coupon.pk}-{slot}-0000",
            claimed_at=at(12),
            clip=clip_,
            redeemed_at=at(70) if redeemed else None,
        )

    claim(k1, a, c1, redeemed=True)
    claim(k1, c, c2)
    claim(k2, e, c3, redeemed=True)
    claim(k2, d, None)  # claimed while nothing was explained: burn only, no product

    for grade in ("A", "A", "B", ""):
        ContactFactory(org=org, grade=grade, source_detail={"room": room.pk})
    ContactFactory(org=org, grade="A", source_detail={"room": room.pk, "demo": True})
    ContactFactory(org=org, grade="A", source_detail={"room": elsewhere.pk})

    for minute, n in ((12, 2), (41, 1)):
        for _ in range(n):
            msg = ChatMessage.unscoped.create(org=org, room=room, contact=a, text="好看")
            ChatMessage.unscoped.filter(pk=msg.pk).update(
                created_at=at(minute) + timedelta(seconds=7)
            )

    for minute, online in ((0, 2), (10, 5), (20, 3), (30, 7), (40, 7), (50, 1)):
        OnlineSample.unscoped.create(org=org, room=room, at=at(minute), online=online)

    invitee = ContactFactory(org=org)
    invite = Invite.unscoped.create(org=org, inviter=a, invitee=invitee, room=room)
    InviteCredit.unscoped.create(org=org, invite=invite, ancestor=a, hops=1)
    return {
        "room": room,
        "elsewhere": elsewhere,
        "p1": p1,
        "p2": p2,
        "k1": k1,
        "k2": k2,
        "a": a,
        "at": at,
    }


@pytest.mark.django_db
class TestRoomReport:
    def test_figures_equal_counts_of_the_raw_rows(self, host_alice, sales_bob, admin_carol):
        world = broadcast(host_alice)
        room, p1, p2 = world["room"], world["p1"], world["p2"]
        body = host_alice.client().get(f"/api/v1/rooms/{room.pk}/report").json()

        clicks = Event.unscoped.filter(room_id=room.pk, type="product.click")
        funnel = {row["product"]: row for row in body["products"]}
        assert list(funnel) == [p1.pk, p2.pk]
        for product, exposed in ((p1, 3), (p2, 2)):
            mine = clicks.filter(props__product=product.pk)
            claims = CouponClaim.unscoped.filter(coupon__room=room, clip__product=product)
            assert funnel[product.pk] == {
                "product": product.pk,
                "name": product.name,
                "explained": ProductClip.unscoped.filter(room=room, product=product).count(),
                "exposed": exposed,
                "clicks": mine.count(),
                "clicked": len(set(mine.values_list("contact_id", flat=True))),
                "claimed": len(set(claims.values_list("contact_id", flat=True))),
                "redeemed": len(
                    set(claims.exclude(redeemed_at=None).values_list("contact_id", flat=True))
                ),
            }
        assert (funnel[p1.pk]["clicks"], funnel[p1.pk]["clicked"]) == (3, 2)
        assert (funnel[p1.pk]["claimed"], funnel[p1.pk]["redeemed"]) == (2, 2)
        assert (funnel[p2.pk]["claimed"], funnel[p2.pk]["redeemed"]) == (1, 0)

        burn = {row["coupon"]: row for row in body["coupons"]}
        for coupon in (world["k1"], world["k2"]):
            rows = CouponClaim.unscoped.filter(coupon=coupon)
            assert burn[coupon.pk]["stock"] == coupon.stock
            assert burn[coupon.pk]["claimed"] == rows.count() == 2
            assert burn[coupon.pk]["redeemed"] == rows.exclude(redeemed_at=None).count()
        assert burn[world["k1"].pk]["claim_rate"] == 0.2

        leads = Contact.unscoped.filter(source_detail__room=room.pk).exclude(
            source_detail__has_key="demo"
        )
        assert body["leads"]["total"] == leads.count() == 4
        assert body["leads"]["by_grade"] == [
            {"grade": "", "count": 1},
            {"grade": "A", "count": 2},
            {"grade": "B", "count": 1},
        ]

        assert body["chat"]["total"] == ChatMessage.unscoped.filter(room=room).count() == 3
        assert [row["count"] for row in body["chat"]["series"]] == [2, 1]

        samples = OnlineSample.unscoped.filter(room=room).order_by("at")
        assert [p["online"] for p in body["online"]["series"]] == [s.online for s in samples]
        assert body["online"]["peak"] == 7
        assert [p["online"] for p in body["online"]["peaks"]] == [5, 7]
        explained = body["online"]["explained"]
        assert [m["product"] for m in explained] == [p1.pk, p2.pk, p1.pk]

        assert body["invites"] == [
            {"contact_id": world["a"].pk, "nickname": "A", "direct": 1, "total": 1}
        ]
        assert "recall" not in body  # no recall campaign from this room

        for actor in (sales_bob, admin_carol):
            again = actor.client().get(f"/api/v1/rooms/{room.pk}/report")
            assert again.status_code == 200 and again.json() == body

    def test_recall_section_comes_from_the_campaigns_hook(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile, status="ended")
        saved = list(room_report_recall)
        try:
            room_report_recall.register(lambda *, room: {"campaign": 1, "uplift": {"uplift": 0.05}})
            body = host_alice.client().get(f"/api/v1/rooms/{room.pk}/report").json()
            assert body["recall"] == {"campaign": 1, "uplift": {"uplift": 0.05}}
        finally:
            for fn in saved:
                room_report_recall.register(fn)

    def test_only_the_rooms_organisation_staff_read_it(
        self, host_alice, host_frank, outsider_erin, viewer_dan, anon
    ):
        room = RoomFactory(streamer=host_alice.profile)
        url = f"/api/v1/rooms/{room.pk}/report"
        assert outsider_erin.client().get(url).status_code == 404
        assert host_frank.client().get(url).status_code == 403  # another host's room
        assert viewer_dan.client().get(url).status_code == 403
        assert anon.get(url).status_code == 401


@pytest.mark.django_db
def test_the_reports_queries_do_not_grow_with_products_or_coupons(host_alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world = broadcast(host_alice)
    room = world["room"]
    client = host_alice.client()
    url = f"/api/v1/rooms/{room.pk}/report"
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for _ in range(4):
        product = RoomProductFactory(room=room).product
        ProductClip.unscoped.create(
            org=room.org,
            room=room,
            product=product,
            pinned_at=world["at"](50),
            unpinned_at=world["at"](52),
        )
        CouponFactory(room=room)
    with CaptureQueriesContext(connection) as after:
        body = client.get(url).json()
    assert len(body["products"]) == 6 and len(body["coupons"]) == 6
    assert len(after.captured_queries) == len(before.captured_queries)
