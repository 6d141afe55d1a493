"""Lucky draws: eligibility, an unbiased choice from a cryptographic source, stored results."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, DomainError
from core.models import Membership
from crm.models import Contact
from livecommerce import presence_bridge
from livecommerce.events import send_room_event_on_commit
from livecommerce.models import Draw, DrawEligibility, DrawWinner, Follow, Room
from livecommerce.services.room_access import ensure_can_manage_room

_winner_handlers: list = []


def on_draw_won(fn):
    """Register ``fn(winner: DrawWinner)``, called after commit for each winner (the
    campaigns sender contacts winners through it)."""
    _winner_handlers.append(fn)
    return fn


def draw_create(
    *,
    membership: Membership,
    room: Room,
    prize: str,
    winner_count: int,
    eligibility: str = DrawEligibility.PRESENT,
    keyword: str = "",
    min_minutes: int = 0,
) -> Draw:
    ensure_can_manage_room(membership=membership, room=room)
    if eligibility == DrawEligibility.KEYWORD and not keyword.strip():
        raise DomainError(_("请填写口令"), fields={"keyword": [_("请填写口令")]})
    if eligibility == DrawEligibility.WATCHED and min_minutes < 1:
        raise DomainError(_("请填写观看分钟数"), fields={"min_minutes": [_("至少 1 分钟")]})
    return Draw.objects.for_org(room.org_id).create(
        org_id=room.org_id,
        room=room,
        prize=prize,
        winner_count=winner_count,
        eligibility=eligibility,
        keyword=keyword.strip(),
        min_minutes=min_minutes,
    )


def draw_candidates(draw: Draw) -> list[int]:
    """Contact ids eligible for a draw, in a stable order."""

    room = draw.room
    present = set(presence_bridge.present_contact_ids(room.pk))
    if draw.eligibility == DrawEligibility.PRESENT:
        pool = present
    elif draw.eligibility == DrawEligibility.KEYWORD:
        pool = set(presence_bridge.contacts_who_commented(room.pk, draw.keyword))
    elif draw.eligibility == DrawEligibility.FOLLOWERS:
        followers = set(
            Follow.objects.for_org(room.org_id)
            .filter(streamer_id=room.streamer_id)
            .values_list("contact_id", flat=True)
        )
        pool = followers & present if present else followers
    else:
        pool = set(presence_bridge.contacts_watched_at_least(room, draw.min_minutes * 60))
    return sorted(pool)


def draw_winners_pick(candidates: list[int], count: int) -> list[int]:
    """Unbiased sample without replacement: ``secrets.randbelow`` partial Fisher–Yates."""
    pool = list(candidates)
    count = min(count, len(pool))
    for i in range(count):
        j = i + secrets.randbelow(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:count]


def draw_run(*, membership: Membership, draw: Draw) -> Draw:
    """Run a draw once: choose winners, store them, push ``draw.result`` to the room."""

    ensure_can_manage_room(membership=membership, room=draw.room)
    with transaction.atomic():
        draw = Draw.unscoped.select_for_update().select_related("room").get(pk=draw.pk)
        if draw.ran_at is not None:
            raise Conflict(_("已经开过奖了"), code="draw_already_run")
        candidates = draw_candidates(draw)
        chosen = draw_winners_pick(candidates, draw.winner_count)
        contacts = Contact.objects.for_org(draw.org_id).in_bulk(chosen)
        winners = [
            DrawWinner(
                org_id=draw.org_id,
                draw=draw,
                contact_id=cid,
                nickname=contacts[cid].nickname if cid in contacts else "",
            )
            for cid in chosen
            if cid in contacts
        ]
        DrawWinner.unscoped.bulk_create(winners)
        draw.ran_at = timezone.now()
        draw.candidates = len(candidates)
        draw.save(update_fields=["ran_at", "candidates", "updated_at"])
        for winner in winners:
            for handler in _winner_handlers:
                transaction.on_commit(lambda h=handler, w=winner: h(w))
        send_room_event_on_commit(
            room_id=draw.room_id,
            type="draw.result",
            data={
                "draw": draw.pk,
                "prize": draw.prize,
                "winners": [{"contact_id": w.contact_id, "nickname": w.nickname} for w in winners],
            },
        )
    return draw
