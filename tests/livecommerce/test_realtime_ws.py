"""The room WebSocket protocol, with a real client against uvicorn serving the project."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from django.db import transaction

from core import staff_events
from livecommerce import events
from livecommerce.realtime import presence
from tests.factories import RoomFactory
from tests.livecommerce.hub_server import (  # noqa: F401 - hub_server_fixture is a fixture
    Client,
    applied,
    chat_texts,
    hub_server_fixture,
    run,
    viewer,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Payloads as the services shape them (livecommerce/events.py, core/staff_events.py).
PRODUCT_CARD = {
    "id": 7,
    "name": "精华液",
    "price": "199.00",
    "original_price": None,
    "image": "",
    "link_url": "https://shop.example.com/p/7",
    "mp_path": "",
    "clip": None,
}
GRADE_CHANGE = {"contact": 5, "old_grade": "C", "grade": "A"}


@pytest.fixture(autouse=True)
def _sync_orm_in_tests(monkeypatch):
    # The scenarios drive sockets from asyncio and call services synchronously in between.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def room(host_alice):
    return RoomFactory(streamer=host_alice.profile, status="live")


@pytest.fixture
def quick_staff_recheck(settings):
    # Listed before hub_server so the hub starts with it.
    settings.REALTIME_STAFF_RECHECK_SECONDS = 0.3


def staff_post(actor, room, text: str):
    response = actor.client().post(f"/api/v1/rooms/{room.pk}/chat", {"text": text}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


class TestDelivery:
    def test_messages_from_one_sender_arrive_in_order_for_viewers_and_host(
        self, hub_server, room, host_alice, acme
    ):
        _, dan = viewer(acme, "dan")

        async def scenario():
            watcher = await Client.open(hub_server.url(room.pk, dan))
            host = await Client.open(hub_server.url(room.pk, host_alice.token))
            for n in range(15):
                await host.send({"type": "chat", "text": f"第{n}条"})
            await watcher.next(lambda e: e.get("text") == "第14条", timeout=10)
            await host.next(lambda e: e.get("text") == "第14条", timeout=10)
            return chat_texts(watcher.events), chat_texts(host.events), watcher.events

        seen, host_seen, raw = run(scenario())
        expected = [f"第{n}条" for n in range(15)]
        assert seen == expected
        assert host_seen == expected
        seqs = [e["seq"] for e in raw if e.get("type") == "chat"]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    def test_a_viewer_resumes_after_a_dropped_connection_with_no_gap(
        self, hub_server, room, host_alice, acme
    ):
        _, dan = viewer(acme, "dan")

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, dan))
            staff_post(host_alice, room, "断线前")
            before = await client.next(lambda e: e.get("text") == "断线前")
            await client.close()  # the connection drops
            for n in range(5):
                staff_post(host_alice, room, f"断线中{n}")
            again = await Client.open(hub_server.url(room.pk, dan))
            await again.send({"type": "resume", "after_seq": before["seq"]})
            staff_post(host_alice, room, "重连后")
            await again.next(lambda e: e.get("text") == "重连后", timeout=10)
            return again.events

        got = run(scenario())
        # The answer ends with "resumed" even when it carried events: the client holds live
        # frames that overtook it until then (they did on a loaded CI box).
        assert [e for e in got if e.get("code") == "resumed"]
        texts = chat_texts(applied(got))
        assert texts == [*(f"断线中{n}" for n in range(5)), "重连后"]

    def test_a_viewer_too_far_behind_is_told_to_refetch_state(
        self, hub_server, room, host_alice, acme
    ):
        _, dan = viewer(acme, "dan")

        async def scenario():
            staff_post(host_alice, room, "很久以前")
            client = await Client.open(hub_server.url(room.pk, dan))
            await client.send({"type": "resume", "after_seq": 1})
            return await client.next(lambda e: e.get("type") == "notice")

        assert run(scenario())["code"] == "resync"

    def test_state_then_events_newer_than_its_seq(self, hub_server, room, host_alice, viewer_dan):
        staff_post(host_alice, room, "状态里的消息")
        state = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/state").json()
        assert [m["text"] for m in state["chat"]] == ["状态里的消息"]

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, viewer_dan.token))
            await client.send({"type": "resume", "after_seq": state["seq"]})
            staff_post(host_alice, room, "新消息")
            return await client.next(lambda e: e.get("type") == "chat")

        event = run(scenario())
        assert event["text"] == "新消息" and event["seq"] > state["seq"]

    def test_likes_are_aggregated_into_a_room_counter(self, hub_server, room, acme):
        _, dan = viewer(acme, "dan")
        _, eve = viewer(acme, "eve")

        async def scenario():
            a = await Client.open(hub_server.url(room.pk, dan))
            b = await Client.open(hub_server.url(room.pk, eve))
            for _ in range(5):
                await a.send({"type": "like", "count": 3})
            await b.send({"type": "like", "count": 10})
            return await a.next(lambda e: e.get("type") == "like" and e["count"] == 25)

        assert run(scenario())["count"] == 25

    def test_priority_events_from_services_reach_every_viewer(self, hub_server, room, acme):
        _, dan = viewer(acme, "dan")

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, dan))
            with transaction.atomic():
                events.send_room_event_on_commit(
                    room_id=room.pk, type="product.pinned", data={"product": PRODUCT_CARD}
                )
                events.send_room_event_on_commit(
                    room_id=room.pk,
                    type="coupon.stock",
                    data={"coupon": 3, "remaining": 10},
                    audience="host",
                )
            return await client.next(lambda e: e["type"] == "product.pinned"), await client.collect(
                0.4
            )

        pinned, rest = run(scenario())
        assert pinned["product"] == PRODUCT_CARD
        assert not [e for e in rest if e.get("type") == "coupon.stock"]  # host-only


class TestSocketRules:
    def test_a_viewer_cannot_send_priority_events(self, hub_server, room, acme):
        _, dan = viewer(acme, "dan")
        _, eve = viewer(acme, "eve")

        async def scenario():
            sender = await Client.open(hub_server.url(room.pk, dan))
            other = await Client.open(hub_server.url(room.pk, eve))
            await sender.send({"type": "coupon.released", "coupon": 1})
            await sender.send({"type": "draw.result", "winners": [1]})
            notice = await sender.next(lambda e: e["type"] == "notice")
            return notice, await other.collect(0.5)

        notice, seen = run(scenario())
        assert notice["code"] == "forbidden"
        assert not [e for e in seen if e["type"] in events.PRIORITY_TYPES]

    def test_a_viewer_of_another_organisation_cannot_join_the_room(
        self, hub_server, room, other_org
    ):
        _, stranger = viewer(other_org, "stranger")

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, stranger), hello=False)
            return client.events, await client.closed_with()

        seen, code = run(scenario())
        assert code == 4404
        assert [e["type"] for e in seen] == []

    def test_unknown_room_and_bad_token_close_with_codes(self, hub_server, room, acme):
        _, dan = viewer(acme, "dan")

        async def scenario():
            missing = await Client.open(hub_server.url(room.pk + 999, dan), hello=False)
            forged = await Client.open(hub_server.url(room.pk, dan[:-3] + "xyz"), hello=False)
            return await missing.closed_with(), await forged.closed_with()

        assert run(scenario()) == (4404, 4401)

    def test_the_origin_must_be_one_of_our_hosts(self, hub_server, room, acme):
        _, dan = viewer(acme, "dan")

        async def scenario():
            evil = await Client.open(
                hub_server.url(room.pk, dan), origin="https://evil.example", hello=False
            )
            ours = await Client.open(
                hub_server.url(room.pk, dan), origin=f"http://127.0.0.1:{hub_server.port}"
            )
            await ours.send({"type": "ping"})
            return await evil.closed_with(), await ours.next(lambda e: e["type"] == "pong")

        code, pong = run(scenario())
        assert code == 4403 and pong == {"type": "pong"}

    def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(self, hub_server, room, acme):
        _, dan = viewer(acme, "dan")

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, dan))
            notices = []
            for bad in [
                "not json",
                "[1,2]",
                '{"type":"like","count":"many"}',
                '{"type":"nope"}',
                '{"type":"chat"}',
                '{"type":"resume","after_seq":-1}',
                "x" * 5000,
            ]:
                await client.send(bad)
                notices.append(await client.next(lambda e: e["type"] == "notice"))
            await client.send({"type": "chat", "text": "还在"})
            echoed = await client.next(lambda e: e.get("type") == "chat")
            return notices, echoed

        notices, echoed = run(scenario())
        assert [n["code"] for n in notices] == [
            "bad_frame",
            "bad_frame",
            "bad_frame",
            "unknown_type",
            "bad_frame",
            "bad_frame",
            "bad_frame",
        ]
        assert echoed["text"] == "还在"

    def test_chat_text_is_delivered_as_data_and_ws_js_never_uses_inner_html(
        self, hub_server, room, acme
    ):
        _, dan = viewer(acme, "dan")
        payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, dan))
            await client.send({"type": "chat", "text": payload})
            return await client.next(lambda e: e.get("type") == "chat")

        assert run(scenario())["text"] == payload  # unchanged data; pages use textContent
        source = (Path(__file__).resolve().parents[2] / "static/shared/ws.js").read_text()
        assert "innerHTML" not in source.replace("never innerHTML", "")


class TestPresenceAndStaff:
    def test_presence_counts_distinct_viewers_and_forgets_them_on_leave(
        self, hub_server, room, acme, host_alice
    ):
        dan_contact, dan = viewer(acme, "dan")
        eve_contact, eve = viewer(acme, "eve")

        async def scenario():
            a = await Client.open(hub_server.url(room.pk, dan))
            a2 = await Client.open(hub_server.url(room.pk, dan))  # a second tab
            b = await Client.open(hub_server.url(room.pk, eve))
            await Client.open(hub_server.url(room.pk, host_alice.token))  # staff not counted
            online = await a.next(lambda e: e["type"] == "online" and e["count"] == 2, timeout=5)
            during = (presence.online_count(room.pk), presence.present_contact_ids(room.pk))
            await b.close()
            await a2.close()
            await a.next(lambda e: e["type"] == "online" and e["count"] == 1, timeout=5)
            return online, during, presence.present_contact_ids(room.pk)

        online, during, after = run(scenario())
        assert online["count"] == 2
        assert during == (2, {dan_contact.pk, eve_contact.pk})
        assert after == {dan_contact.pk}
        assert presence.peak_online(room.pk) == 2

    def test_staff_notifications_reach_only_their_user(
        self, hub_server, acme, host_alice, sales_bob
    ):
        async def scenario():
            bob = await Client.open(hub_server.staff_url(sales_bob.token))
            alice = await Client.open(hub_server.staff_url(host_alice.token))
            with transaction.atomic():
                staff_events.send_staff_event_on_commit(
                    org_id=acme.pk,
                    user_id=sales_bob.user.pk,
                    type="lead.grade_changed",
                    data=GRADE_CHANGE,
                )
            got = await bob.next(lambda e: e["type"] == "lead.grade_changed")
            return got, await alice.collect(0.4)

        got, alice_saw = run(scenario())
        assert got == {"type": "lead.grade_changed", **GRADE_CHANGE}
        assert alice_saw == []

    def test_a_viewer_token_cannot_open_the_staff_socket(self, hub_server, viewer_dan):
        async def scenario():
            client = await Client.open(hub_server.staff_url(viewer_dan.token), hello=False)
            return await client.closed_with()

        assert run(scenario()) == 4401

    def test_a_signed_out_staff_token_is_refused_by_the_staff_and_room_sockets(
        self, hub_server, room, host_alice
    ):
        response = host_alice.client().post("/api/v1/auth/logout")
        assert response.status_code == 204

        async def scenario():
            staff = await Client.open(hub_server.staff_url(host_alice.token), hello=False)
            console = await Client.open(hub_server.url(room.pk, host_alice.token), hello=False)
            return await staff.closed_with(), await console.closed_with()

        assert run(scenario()) == (4401, 4401)

    def test_open_staff_sockets_are_closed_after_sign_out(
        self, quick_staff_recheck, hub_server, room, host_alice
    ):
        async def scenario():
            staff = await Client.open(hub_server.staff_url(host_alice.token))
            console = await Client.open(hub_server.url(room.pk, host_alice.token))
            response = host_alice.client().post("/api/v1/auth/logout")
            assert response.status_code == 204
            return await staff.closed_with(5), await console.closed_with(5)

        assert run(scenario()) == (4401, 4401)

    def test_joins_leaves_chats_and_likes_reach_the_crm_in_batches(self, hub_server, room, acme):
        from crm.models import Event
        from livecommerce.realtime.crm import buffer

        contact, dan = viewer(acme, "dan")

        async def scenario():
            client = await Client.open(hub_server.url(room.pk, dan))
            await client.send({"type": "like", "count": 4})
            await client.send({"type": "like", "count": 2})
            await client.send({"type": "chat", "text": "想要链接"})
            await client.next(lambda e: e.get("type") == "chat")
            await client.close()
            await asyncio.sleep(0.3)

        run(scenario())
        buffer.flush()
        logged = {e.type: e for e in Event.objects.for_org(acme).filter(contact=contact)}
        assert set(logged) == {"room.join", "room.leave", "chat", "like"}
        assert logged["like"].props == {"count": 6}
        assert logged["chat"].props["text"] == "想要链接"
        assert logged["room.leave"].props["watch_seconds"] >= 0
        assert logged["room.join"].room_id == room.pk


@pytest.mark.django_db
def test_a_crm_batch_survives_the_trip_to_the_writer_process(acme):
    """The writer process decodes exactly what the hub process encoded, then records it."""
    from crm.models import Event
    from livecommerce.realtime.crm import (
        CrmBuffer,
        events_from_line,
        line_from_events,
        write_events,
    )

    contact, _token = viewer(acme, "mei")
    hub_side = CrmBuffer()
    hub_side.record(org_id=acme.pk, contact_id=contact.pk, type="room.join", room_id=7, key="j:1")
    hub_side.add_likes(org_id=acme.pk, contact_id=contact.pk, room_id=7, count=3)
    hub_side.add_likes(org_id=acme.pk, contact_id=contact.pk, room_id=7, count=2)
    line = line_from_events(hub_side._take())

    assert write_events(events_from_line(line)) == 2
    logged = {e.type: e for e in Event.objects.for_org(acme).filter(contact=contact)}
    assert set(logged) == {"room.join", "like"}
    assert logged["like"].props == {"count": 5}
    assert logged["room.join"].room_id == 7
    assert write_events(events_from_line(line)) == 0  # a replayed batch records nothing twice
