"""Every event the code publishes has a typed schema, and its payload matches it.

Room events (``livecommerce/events.py``), staff events (``core/staff_events.py``) and CRM
behaviour events (``crm/events.py``) are checked at publish when
``settings.EVENT_SCHEMA_CHECKS`` is on, as in every test; these tests drive each kind
through its real publish path and read the code for the kinds it publishes.
"""

from __future__ import annotations

import ast
import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from core import staff_events
from core.event_schemas import EventSchemaError, payload_errors
from core.staff_events import STAFF_EVENT_SCHEMAS, send_staff_event_on_commit
from crm.events import EVENT_PROPS, EVENT_TYPES
from crm.models import Event
from crm.services.events import event_record
from livecommerce.events import (
    HUB_CONTROL_SCHEMAS,
    PRIORITY_TYPES,
    ROOM_EVENT_SCHEMAS,
    send_hub_control_on_commit,
    send_room_event_on_commit,
)
from livecommerce.realtime.transport import MemoryTransport, RedisTransport
from tests.factories import ContactFactory, RoomFactory
from tests.livecommerce.factories import RoomProductFactory

ROOT = Path(settings.BASE_DIR)
APPS = ("core", "crm", "livecommerce", "wechat", "campaigns")

# Publish function (as called) → the family whose schemas its ``type=`` literal needs.
ROOM, STAFF, CRM, CONTROL = "room", "staff", "crm", "control"
PUBLISHERS = {
    "send_room_event_on_commit": ROOM,
    "envelope": ROOM,  # the transport's own events (like, online)
    "_publish": ROOM,  # the fast coupon backends' throttled coupon.stock
    "check_room_event": ROOM,
    "send_staff_event_on_commit": STAFF,
    "event_record": CRM,
    "record_event": CRM,  # wechat.crm_bridge
    "EventIn": CRM,
    "send_hub_control_on_commit": CONTROL,
}
SCHEMAS = {
    ROOM: ROOM_EVENT_SCHEMAS,
    STAFF: STAFF_EVENT_SCHEMAS,
    CRM: EVENT_PROPS,
    CONTROL: HUB_CONTROL_SCHEMAS,
}


def _published_kinds() -> dict[str, set[str]]:
    """Each family's event kinds given as literals to a publish function in the apps' code."""
    found: dict[str, set[str]] = {family: set() for family in SCHEMAS}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                family = PUBLISHERS.get(name)
                if name == "record" and isinstance(func, ast.Attribute):
                    owner = getattr(func.value, "id", "")
                    family = CRM if owner.endswith("buffer") else None  # the hub's CRM buffer
                if family is None:
                    continue
                literal = None
                for keyword in node.keywords:
                    if keyword.arg in ("type", "kind") and isinstance(keyword.value, ast.Constant):
                        literal = keyword.value.value
                if name in ("_publish", "check_room_event") and len(node.args) >= 2:
                    first = node.args[1] if name == "_publish" else node.args[0]
                    if isinstance(first, ast.Constant):
                        literal = first.value
                if isinstance(literal, str):
                    found[family].add(literal)
    return found


# Kinds recorded without a publish call the scan can read: file → kinds it builds itself.
BUILT_IN_PLACE = {CRM: {"livecommerce/realtime/crm.py": {"like"}}}  # CrmBuffer._take


# The database mark orders these reading tests with the database tests, before the hub's
# transactional ones: pytest's gc pass otherwise hands this test an earlier hub test's
# leftover finalizer touching the database ("Database access not allowed", seen once).
@pytest.mark.django_db
def test_every_kind_the_code_publishes_has_a_schema_and_every_schema_is_published():
    found = _published_kinds()
    for family, files in BUILT_IN_PLACE.items():
        for path, kinds in files.items():
            source = (ROOT / path).read_text()
            assert all(f'"{kind}"' in source for kind in kinds), (path, kinds)
            found[family] |= kinds
    for family, schemas in SCHEMAS.items():
        assert found[family] <= set(schemas), (family, found[family] - set(schemas))
    # Every room, staff and control schema is for a kind the code really publishes.
    assert set(ROOM_EVENT_SCHEMAS) == found[ROOM]
    assert set(STAFF_EVENT_SCHEMAS) == found[STAFF]
    assert set(HUB_CONTROL_SCHEMAS) == found[CONTROL]
    assert set(ROOM_EVENT_SCHEMAS) >= PRIORITY_TYPES
    # The CRM log accepts exactly the kinds with a props schema; only form.submit comes from
    # external systems alone (the ingest API).
    assert tuple(EVENT_PROPS) == EVENT_TYPES
    assert set(EVENT_TYPES) - found[CRM] == {"form.submit"}


# -- room events through the real publish path -------------------------------------------------


@pytest.mark.django_db
def test_a_whole_broadcast_publishes_only_schema_valid_room_events(
    host_alice, viewer_dan, published, django_capture_on_commit_callbacks
):
    room = RoomFactory(streamer=host_alice.profile, status="scheduled")
    item = RoomProductFactory(room=room)
    host = host_alice.client()
    viewer = viewer_dan.client()
    event_record(contact=viewer_dan.contact, type="room.join", room_id=room.pk)
    coupon = {
        "name": "满199减30",
        "kind": "threshold",
        "amount": "30",
        "threshold": "199",
        "stock": 100,
        "per_viewer_limit": 1,
        "valid_until": (timezone.now() + timedelta(days=3)).isoformat(),
    }
    with django_capture_on_commit_callbacks(execute=True):
        steps = [
            host.post(f"/api/v1/rooms/{room.pk}/start"),
            host.post(f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin"),
            host.post(
                f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin",
                {"pinned": False},
                format="json",
            ),
        ]
        coupon_id = host.post(f"/api/v1/rooms/{room.pk}/coupons", coupon, format="json").json()[
            "id"
        ]
        steps.append(host.post(f"/api/v1/coupons/{coupon_id}/release"))
        steps.append(viewer.post(f"/api/v1/coupons/{coupon_id}/claim"))
        draw = host.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "面膜一盒", "winner_count": 1},
            format="json",
        ).json()
        steps.append(host.post(f"/api/v1/draws/{draw['id']}/run"))
        chat = host.post(f"/api/v1/rooms/{room.pk}/chat", {"text": "欢迎"}, format="json")
        steps.append(chat)
        steps.append(host.post(f"/api/v1/rooms/{room.pk}/chat/{chat.json()['id']}/delete"))
        steps.append(
            host.post(f"/api/v1/rooms/{room.pk}/announcement", {"text": "8点抽奖"}, format="json")
        )
        steps.append(
            host.patch(
                f"/api/v1/rooms/{room.pk}/chat-settings", {"premoderation": True}, format="json"
            )
        )
        for action in ("mute", "unmute", "shadow", "ban", "unban"):
            steps.append(
                host.post(
                    f"/api/v1/rooms/{room.pk}/moderation",
                    {"action": action, "contact": viewer_dan.contact.pk, "minutes": 5},
                    format="json",
                )
            )
        steps.append(host.post(f"/api/v1/rooms/{room.pk}/end"))
    assert [s.status_code for s in steps if s.status_code >= 300] == []
    seen = {event["type"] for _room, event in published}
    # Every room event kind a service publishes went out (like/online: the hub, below).
    assert seen == set(ROOM_EVENT_SCHEMAS) - {"like", "online"}
    for _room, event in published:
        payload = {k: v for k, v in event.items() if k not in ("type", "_audience")}
        assert payload_errors(ROOM_EVENT_SCHEMAS[event["type"]], payload) == [], event
    moderation = {e["action"] for _r, e in published if e["type"] == "moderation"}
    assert moderation == {"delete", "settings", "mute", "unmute", "shadow", "ban", "unban"}
    # The wire format is the schema's fields, nothing more (what the viewer page reads).
    chat_event = next(e for _r, e in published if e["type"] == "chat")
    assert set(chat_event) - {"_audience"} == {
        "type",
        "id",
        "text",
        "nickname",
        "contact_id",
        "host",
        "status",
        "at",
    }


@pytest.mark.django_db
def test_the_hubs_own_like_and_online_events_match_their_schemas():
    # The transport kind this tier runs (Redis on the integration tier), on its own prefix.
    if settings.REALTIME_REDIS_URL:
        transport = RedisTransport(
            url=settings.REALTIME_REDIS_URL,
            prefix=f"qmtest-{uuid.uuid4().hex[:8]}",
            log_size=settings.REALTIME_LOG_SIZE,
        )
    else:
        transport = MemoryTransport(log_size=settings.REALTIME_LOG_SIZE)
    room_id = 987_654_321

    async def hub_side():
        await transport.start(on_room=lambda *a: None, on_staff=lambda *a: None, on_resync=None)
        try:
            await transport.add_likes(room_id, 3)
            await transport.report_presence(room_id, count=2, added=[1, 2], removed=[])
        finally:
            await transport.stop()

    asyncio.run(hub_side())
    envelopes, _complete = transport.history(room_id, 0)
    events = [json.loads(envelope.split("|", 3)[3]) for envelope in envelopes]
    assert {e["type"] for e in events} == {"like", "online"}
    for event in events:
        payload = {k: v for k, v in event.items() if k not in ("seq", "type")}
        assert payload_errors(ROOM_EVENT_SCHEMAS[event["type"]], payload) == [], event
    like = next(e for e in events if e["type"] == "like")
    assert like == {"seq": like["seq"], "type": "like", "count": 3, "delta": 3}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("type", "data", "problem"),
    [
        ("room.status", {"status": "live", "by": "host"}, "unexpected 'by'"),
        ("room.status", {}, "missing 'status'"),
        ("room.status", {"status": "paused"}, "is not one of"),
        ("coupon.stock", {"coupon": 1, "remaining": "9"}, "remaining: expected int"),
        ("coupon.stock", {"coupon": True, "remaining": 9}, "coupon: expected int"),
        ("announcement", {"text": None}, "text: expected str"),
        ("draw.result", {"draw": 1, "prize": "x", "winners": [{"contact_id": 1}]}, "missing"),
        ("moderation", {"action": "delete"}, "matches none of"),
        ("product.pinned", {"product": {"id": 1}}, "matches none of"),
        ("room.renamed", {"title": "新标题"}, "has no schema"),
    ],
)
def test_a_room_payload_off_its_schema_is_refused_before_anything_is_published(
    type, data, problem, published, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(EventSchemaError, match=problem),
    ):
        send_room_event_on_commit(room_id=1, type=type, data=data)
    assert published == []


@pytest.mark.django_db
def test_a_valid_room_payload_reaches_screens_unchanged(
    published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send_room_event_on_commit(
            room_id=5, type="coupon.stock", data={"coupon": 3, "remaining": 0}
        )
    assert published == [
        (5, {"type": "coupon.stock", "coupon": 3, "remaining": 0, "_audience": "all"})
    ]


@pytest.mark.django_db
def test_hub_control_messages_are_checked_too(django_capture_on_commit_callbacks):
    with pytest.raises(EventSchemaError, match="unexpected 'drop'"):
        send_hub_control_on_commit(kind="bans", org_id=1, data={"add": [], "drop": [1]})
    with pytest.raises(EventSchemaError, match="has no schema"):
        send_hub_control_on_commit(kind="rooms", org_id=1, data={})


@pytest.mark.django_db
def test_checks_are_off_unless_settings_turn_them_on(
    settings, published, django_capture_on_commit_callbacks
):
    settings.EVENT_SCHEMA_CHECKS = False
    with django_capture_on_commit_callbacks(execute=True):
        send_room_event_on_commit(room_id=6, type="room.renamed", data={"title": "x"})
    assert published == [(6, {"type": "room.renamed", "title": "x", "_audience": "all"})]


# -- staff events --------------------------------------------------------------------------


@pytest.fixture
def staff_messages():
    seen: list[dict] = []
    previous = list(staff_events.staff_publisher)
    staff_events.staff_publisher.register(lambda message: seen.append(json.loads(message)))
    yield seen
    for fn in previous:
        staff_events.staff_publisher.register(fn)


@pytest.mark.django_db
def test_a_notification_and_a_grade_change_reach_the_owner_as_their_schemas_say(
    acme, sales_bob, staff_messages, django_capture_on_commit_callbacks
):
    from crm.services.leads import user_notify
    from crm.services.scoring.grades import grade_changed_emit

    lead = ContactFactory(org=acme, owner=sales_bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        user_notify(
            user=sales_bob.user, org_id=acme.pk, kind="lead.hot", title="热线索", data={"a": 1}
        )
        grade_changed_emit(lead, "C", "A")
    kinds = [m["e"]["type"] for m in staff_messages]
    assert kinds == ["crm.notification", "lead.grade_changed"]
    assert set(kinds) == set(STAFF_EVENT_SCHEMAS)
    for message in staff_messages:
        event = dict(message["e"])
        kind = event.pop("type")
        assert payload_errors(STAFF_EVENT_SCHEMAS[kind], event) == []
    assert staff_messages[1]["e"] == {
        "type": "lead.grade_changed",
        "contact": lead.pk,
        "old_grade": "C",
        "grade": "A",
    }


@pytest.mark.django_db
def test_a_staff_payload_off_its_schema_is_refused(
    staff_messages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(EventSchemaError, match="unexpected 'score'"):
            send_staff_event_on_commit(
                org_id=1,
                user_id=1,
                type="lead.grade_changed",
                data={"contact": 1, "old_grade": "C", "grade": "A", "score": 80},
            )
        with pytest.raises(EventSchemaError, match="has no schema"):
            send_staff_event_on_commit(org_id=1, user_id=1, type="lead.hot", data={})
    assert staff_messages == []


# -- CRM behaviour events --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("type", "props", "problem"),
    [
        ("coupon.claim", {"coupon": 1, "price": "9.9"}, "unexpected 'price'"),
        ("room.leave", {"watch_seconds": "600"}, "watch_seconds: expected int"),
        ("room.join", {"room": 1}, "unexpected 'room'"),
        ("oa.subscribe", {"account": 1, "scene": 7}, "scene: expected str"),
        ("webinar.join", {}, "has no schema"),
    ],
)
def test_a_crm_event_off_its_schema_is_refused_and_not_recorded(type, props, problem, acme):
    contact = ContactFactory(org=acme)
    with pytest.raises(EventSchemaError, match=problem):
        event_record(contact=contact, type=type, props=props)
    assert not Event.objects.for_org(acme).filter(contact=contact).exists()


@pytest.mark.django_db
def test_an_external_systems_props_are_kept_as_sent(acme):
    contact = ContactFactory(org=acme)
    event = event_record(
        contact=contact, type="order", props={"amount": 99, "sku": "A-1"}, external=True
    )
    assert event.props == {"amount": 99, "sku": "A-1"} and event.value == 99
