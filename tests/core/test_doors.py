"""Every door checked (issue 18): every HTTP route of the URL resolver and every WebSocket
route of the ASGI router, walked with every kind of caller.

Callers: anonymous, a viewer token, the organisation's streamer, sales and admin (on the
organisation's own objects), and an admin of another organisation on the same objects.
``DOORS`` holds the expected status of each (route, method, caller); a route added to the
resolver without a row here fails ``test_the_table_covers_exactly_the_resolvers_routes``.

Every write is sent with a body that tries to set ``org``, ``role``, ``score``, ``owner`` and
another organisation's ids: it must be refused (400, unknown fields) or ignored, and no
membership, no contact's org/score/owner and nothing of the other organisation may change.
No 2xx body may carry the other organisation's rows (each organisation's objects carry a
marker in their names).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import Membership, Organization, Role
from core.tokens import issue_staff_token, issue_viewer_token
from crm.models import Contact
from tests.campaigns.factories import add_phone
from tests.factories import (
    ContactFactory,
    MembershipFactory,
    ProductFactory,
    RoomFactory,
    StreamerProfileFactory,
    UserFactory,
)

OWN, FOREIGN = "QMOWNROW", "QMFOREIGNROW"
CALLERS = ("anon", "viewer", "outsider", "streamer", "sales", "admin")
WRITE_METHODS = ("post", "put", "patch", "delete")

# Routes answered to anyone (the public room page's data, the viewer's own session, …): an
# outsider's 2xx there may show the organisation's public rows.
PUBLIC = {
    "room-public",
    "room-state",
    "streamer",
    "product-detail",
    "room-products",
    "room-coupons",
    "room-replay",
    "room-follow-qr",
    "room-invite-poster",
    "room-mp-code",
    "replay-watch",
    "room-invite-leaderboard",
    "room-chat",
    # pages
    "live-list",
    "live-privacy",
    "live-room",
    "live-replay",
    "streamer-page",
}
# Routes that call WeChat: with no reachable WeChat they answer 503 (never another 5xx).
UPSTREAM = {"room-follow-qr", "wechat-tags"}


# --- the routes ---------------------------------------------------------------------------


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def resolver_routes() -> dict[str, tuple[str, URLPattern]]:
    """{route key: (route, pattern)}; the key is the URL name, else the route itself."""
    found = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue  # Django admin: its own login and permissions
        found[pattern.name or route] = (route, pattern)
    return found


def methods_of(pattern: URLPattern) -> list[str]:
    cls = getattr(pattern.callback, "cls", None)
    if cls is None:
        return ["get", "post"]
    return [m for m in ("get", *WRITE_METHODS) if hasattr(cls, m)]


# --- the expected answers -----------------------------------------------------------------
# route key -> {method: "anon viewer outsider streamer sales admin"}; "2xx" means any 2xx.
# Non-API pages, hooks and files: one line for GET/POST by every caller.

DOORS: dict[str, dict[str, str]] = {}
if os.environ.get("DOORS_PROBE") != "1":
    from tests.core.doors_table import DOORS  # noqa: F811


# --- the world ----------------------------------------------------------------------------


def _org_world(org, marker: str) -> dict:
    from campaigns.models import Campaign, Journey, MessageTemplate, StaffWeChatBind, Variant
    from crm.models import (
        AssignmentRule,
        ContactMerge,
        LeadJob,
        Notification,
        SalesTeam,
        ScoringModel,
        ScoringRule,
        Segment,
        Task,
    )
    from livecommerce.models import ChatMessage, Coupon, Draw, SensitiveWord
    from wechat.models import WeChatAccount, WeChatQrScene

    slug = org.slug  # doors-a, doors-b: the users are named after it
    streamer_m = MembershipFactory(
        org=org, user=UserFactory(username=f"{slug}-host"), role=Role.STREAMER
    )
    sales_m = MembershipFactory(
        org=org, user=UserFactory(username=f"{slug}-sales"), role=Role.SALES
    )
    admin_m = MembershipFactory(
        org=org, user=UserFactory(username=f"{slug}-admin"), role=Role.ADMIN
    )
    profile = StreamerProfileFactory(org=org, user=streamer_m.user, name=f"{marker} host")
    room = RoomFactory(org=org, streamer=profile, title=f"{marker} room", status="live")
    product = ProductFactory(org=org, name=f"{marker} product")
    lead = ContactFactory(org=org, nickname=f"{marker} lead", owner=sales_m.user)
    add_phone(lead, "13800138000" if marker == OWN else "13900139000")
    other_lead = ContactFactory(org=org, nickname=f"{marker} lead2")
    coupon = Coupon.unscoped.create(
        org=org,
        room=room,
        name=f"{marker} coupon",
        kind="no_threshold",
        amount=Decimal("5"),
        stock=10,
        valid_until=timezone.now() + timedelta(days=1),
        released_at=timezone.now(),
    )
    draw = Draw.unscoped.create(org=org, room=room, prize=f"{marker} prize")
    message = ChatMessage.unscoped.create(org=org, room=room, contact=lead, text=f"{marker} chat")
    word = SensitiveWord.unscoped.create(org=org, pattern=f"{marker}word")
    job = LeadJob.unscoped.create(org=org, kind="export")
    merge = ContactMerge.unscoped.create(org=org, survivor=lead, absorbed=other_lead)
    task = Task.unscoped.create(
        org=org, contact=lead, title=f"{marker} task", due_at=timezone.now(), assignee=sales_m.user
    )
    model = ScoringModel.unscoped.create(org=org)
    rule = ScoringRule.unscoped.create(
        org=org,
        model=model,
        name=f"{marker} rule",
        points=5,
        condition={"event": "like", "agg": "count", "op": "gte", "value": 1},
    )
    segment = Segment.unscoped.create(
        org=org, name=f"{marker} segment", condition={"field": "score", "op": "gte", "value": 0}
    )
    notification = Notification.unscoped.create(
        org=org, user=sales_m.user, kind="hot_lead", title=f"{marker} notice"
    )
    team = SalesTeam.unscoped.create(org=org, name=f"{marker} team")
    assignment = AssignmentRule.unscoped.create(org=org, team=team, room_id=room.pk)
    template = MessageTemplate.unscoped.create(
        org=org, name=f"{marker} template", channel="sms", message_class="service", body="您好"
    )
    campaign = Campaign.unscoped.create(
        org=org, name=f"{marker} campaign", channel="sms", message_class="service"
    )
    Variant.objects.create(campaign=campaign, name="A", template=template)
    journey = Journey.unscoped.create(
        org=org, key=f"j-{slug}", name=f"{marker} journey", trigger_event="room_join"
    )
    account = WeChatAccount.unscoped.create(
        org=org, name=f"{marker} oa", appid_encrypted="x", appid_hash=f"h-{slug}"
    )
    qr = WeChatQrScene.unscoped.create(
        org=org, account=account, scene=f"s-{slug}", kind="temporary", ticket="t", url="u"
    )
    bind = StaffWeChatBind.unscoped.create(
        org=org,
        user=admin_m.user,
        account=account,
        code_hash=f"c-{slug}",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    viewer = issue_viewer_token(org_id=org.pk, contact_id=lead.pk, device=f"dev-{slug}")
    return {
        "org": org,
        "tokens": {
            "viewer": viewer,
            "streamer": issue_staff_token(membership=streamer_m),
            "sales": issue_staff_token(membership=sales_m),
            "admin": issue_staff_token(membership=admin_m),
        },
        "users": {"admin": admin_m.user, "sales": sales_m.user},
        "lead": lead,
        "ids": {
            "product_id": product.pk,
            "room_id": room.pk,
            "coupon_id": coupon.pk,
            "streamer_id": profile.pk,
            "draw_id": draw.pk,
            "message_id": message.pk,
            "word_id": word.pk,
            "job_id": job.pk,
            "lead_id": lead.pk,
            "merge_id": merge.pk,
            "task_id": task.pk,
            "rule_id": rule.pk,
            "assignment_rule_id": assignment.pk,
            "segment_id": segment.pk,
            "notification_id": notification.pk,
            "team_id": team.pk,
            "template_id": template.pk,
            "campaign_id": campaign.pk,
            "journey_id": journey.pk,
            "bind_id": bind.pk,
            "account_id": account.pk,
            "qr_id": qr.pk,
            "event": "publish",
            "provider": "tencent",
            "code": "nosuch",
            "clip_id": 999999,
            "path": "nosuch.txt",
        },
    }


@pytest.fixture(scope="module")
def _module_world(django_db_setup, django_db_blocker):
    """Built once for the module (each test's changes roll back with its transaction)."""
    with django_db_blocker.unblock():
        own = _org_world(Organization.objects.create(slug="doors-a", name=f"{OWN} org"), OWN)
        foreign = _org_world(
            Organization.objects.create(slug="doors-b", name=f"{FOREIGN} org"), FOREIGN
        )
    yield own, foreign
    with django_db_blocker.unblock():
        from django.contrib.auth import get_user_model

        from campaigns.models import Campaign
        from livecommerce.models import Room

        for model in (Campaign, Room):  # protected foreign keys first
            model.unscoped.filter(org__slug__in=["doors-a", "doors-b"]).delete()
        Organization.objects.filter(slug__in=["doors-a", "doors-b"]).delete()
        get_user_model().objects.filter(username__startswith="doors-").delete()


@pytest.fixture
def world(_module_world, db):
    return _module_world


def _client(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _fill(route: str, ids: dict) -> str:
    import re

    if route.startswith("api/v1/assignment-rules/"):
        ids = {**ids, "rule_id": ids["assignment_rule_id"]}
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)
    path = path.replace("^", "").replace("$", "")
    return "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(ids[m.group(1)]), path)


def _fingerprint(org) -> tuple:
    """What no write may change through its input: every membership, every contact's
    organisation, no score or owner from the request, and the rows of ``org`` (the caller's
    other organisation)."""
    from django.apps import apps

    members = sorted(Membership.objects.values_list("user_id", "org_id", "role"))
    contacts = sorted(Contact.unscoped.values_list("pk", "org_id"))
    planted = Contact.unscoped.filter(score=999).count()
    counts = []
    for model in apps.get_models():
        if hasattr(model, "unscoped") and any(f.name == "org" for f in model._meta.fields):
            counts.append((model._meta.label, model.unscoped.filter(org=org).count()))
    return members, contacts, planted, counts


def _foreign_owner_set(own, foreign) -> bool:
    return Contact.unscoped.filter(org=own["org"], owner__membership__org=foreign["org"]).exists()


def _mass_assignment(own, foreign) -> dict:
    ids = foreign["ids"]
    return {
        "org": foreign["org"].pk,
        "org_id": foreign["org"].pk,
        "role": "admin",
        "score": 999,
        "owner": foreign["users"]["admin"].pk,
        "owner_id": foreign["users"]["admin"].pk,
        "contact": ids["lead_id"],
        "contact_id": ids["lead_id"],
        "room": ids["room_id"],
        "room_id": ids["room_id"],
        "lead": ids["lead_id"],
    }


ROUTES = resolver_routes()


def _caller(name, own, foreign):
    """(client, ids, marker the body must not hold)."""
    if name == "anon":
        return _client(None), own["ids"], FOREIGN
    if name == "outsider":
        return _client(foreign["tokens"]["admin"]), own["ids"], OWN
    return _client(own["tokens"][name]), own["ids"], FOREIGN


def assert_security_headers(headers, context) -> None:
    """Security headers on every answer (Django's SecurityMiddleware, clickjacking; the ASGI
    fast paths send the same, tests/core/test_doors_ws.py). ``headers``: case-insensitive."""
    assert headers.get("X-Content-Type-Options") == "nosniff", context
    assert headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN"), context
    assert headers.get("Referrer-Policy"), context
    assert headers.get("Cross-Origin-Opener-Policy"), context


@pytest.mark.django_db
def test_the_table_covers_exactly_the_resolvers_routes():
    if os.environ.get("DOORS_PROBE") == "1":
        pytest.skip("probing")
    assert set(DOORS) == set(ROUTES)
    for key, (_, pattern) in ROUTES.items():
        assert set(DOORS[key]) == set(methods_of(pattern)), key


@pytest.mark.django_db
@pytest.mark.parametrize("key", sorted(ROUTES))
def test_every_door(key, world, settings, caplog):
    own, foreign = world
    route, pattern = ROUTES[key]
    observed = {}
    for method in methods_of(pattern):
        answers = []
        for name in CALLERS:
            client, ids, forbidden_marker = _caller(name, own, foreign)
            path = _fill(route, ids)
            other_org = own["org"] if name == "outsider" else foreign["org"]
            before = _fingerprint(other_org)
            if method == "get":
                response = client.get(path)
            else:
                response = getattr(client, method)(
                    path, _mass_assignment(own, foreign), format="json"
                )
            status = response.status_code
            answers.append(str(status))
            assert_security_headers(response.headers, (key, method, name))
            assert status < 500 or (status == 503 and key in UPSTREAM), (key, method, name, status)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if 200 <= status < 300 and not (name == "outsider" and key in PUBLIC):
                assert forbidden_marker.encode() not in body, (key, method, name)
            if method != "get":
                assert _fingerprint(other_org) == before, (key, method, name, status)
                assert not _foreign_owner_set(own, foreign), (key, method, name, status)
        observed[method] = " ".join(answers)
    if os.environ.get("DOORS_PROBE") == "1":
        with open("/tmp/doors_probe.jsonl", "a") as out:
            out.write(json.dumps({key: observed}) + "\n")
        return
    assert observed == DOORS[key]
