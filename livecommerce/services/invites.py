"""Invite codes, the share graph (who invited whom over many hops), credit to every
ancestor, the leaderboard, and fraud signals that exclude rigged invites."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.http import HttpRequest

from core.links import absolute_reverse
from crm.models import Contact
from crm.services.events import event_record
from livecommerce.models import Invite, InviteCode, InviteCredit, Room

# Credit reaches this many hops up the chain (hop 1 = the direct inviter).
MAX_HOPS = 10
# More invitees than this on one device or IP from one inviter is a cluster, not friends.
CLUSTER_LIMIT = 3


def invite_code_for(*, contact, device: str = "") -> str:
    """The viewer's own invite code (created on first use; remembers the device it was
    created on, so an invitee on the same device is flagged)."""
    existing = InviteCode.objects.for_org(contact.org_id).filter(contact=contact).first()
    if existing:
        return existing.code
    for _ in range(5):
        try:
            with transaction.atomic():
                return (
                    InviteCode.objects.for_org(contact.org_id)
                    .create(
                        org_id=contact.org_id,
                        contact=contact,
                        code=secrets.token_hex(4),
                        device=device[:64],
                    )
                    .code
                )
        except IntegrityError:
            again = InviteCode.objects.for_org(contact.org_id).filter(contact=contact).first()
            if again:
                return again.code
    raise RuntimeError("could not allocate an invite code")


def invite_link(
    *, room, code: str, clip_id: int | None = None, request: HttpRequest | None = None
) -> str:
    """The room's page (or one of its clips) crediting ``code``, on the serving address."""
    if clip_id:
        return absolute_reverse(
            "live-clip", args=[room.pk, clip_id], query={"invite": code}, request=request
        )
    return absolute_reverse("live-room", args=[room.pk], query={"invite": code}, request=request)


def invite_accept(
    *, invitee, code: str, room_id: int | None = None, device: str = "", ip: str = ""
):
    """Record that ``invitee`` arrived through ``code``. First link wins; returns the Invite
    or None (unknown code, already invited). Fraud signals flag instead of dropping, so the
    graph stays complete but flagged invites earn no credit."""

    owner = InviteCode.objects.for_org(invitee.org_id).select_related("contact").filter(code=code)
    owner = owner.first()
    if owner is None:
        return None
    inviter = owner.contact
    if Invite.objects.for_org(invitee.org_id).filter(invitee=invitee).exists():
        return None
    flag = ""
    if inviter.pk == invitee.pk:
        flag = "self_invite"
    elif _is_ancestor(invitee, inviter):
        flag = "cycle"
    elif device and (
        device == owner.device
        or Invite.objects.for_org(invitee.org_id).filter(device=device).count() >= CLUSTER_LIMIT
    ):
        flag = "same_device"
    elif ip and (
        Invite.objects.for_org(invitee.org_id).filter(inviter=inviter, ip=ip).count()
        >= CLUSTER_LIMIT
    ):
        flag = "ip_cluster"
    if room_id and not Room.objects.for_org(invitee.org_id).filter(pk=room_id).exists():
        room_id = None
    parent = Invite.objects.for_org(invitee.org_id).filter(invitee=inviter).first()
    depth = (parent.depth + 1) if parent else 1
    try:
        with transaction.atomic():
            invite = Invite.objects.for_org(invitee.org_id).create(
                org_id=invitee.org_id,
                inviter=inviter,
                invitee=invitee,
                room_id=room_id,
                device=device[:64],
                ip=ip[:64],
                depth=depth,
                flagged=flag,
            )
            if not flag:
                credits = [
                    InviteCredit(org_id=invitee.org_id, invite=invite, ancestor_id=aid, hops=hops)
                    for hops, aid in enumerate(_ancestors(inviter), start=1)
                ]
                InviteCredit.unscoped.bulk_create(credits)
                event_record(
                    contact=inviter,
                    type="invite.accepted",
                    props={"invitee": invitee.pk, "depth": depth},
                    room_id=room_id,
                    key=f"invite.accepted:{invite.pk}",
                )
    except IntegrityError:
        return None
    return invite


def _ancestors(inviter) -> list[int]:
    """The inviter, then who invited them, and so on (cycle-safe, capped)."""
    chain = [inviter.pk]
    current = inviter.pk
    for _ in range(MAX_HOPS - 1):
        parent = (
            Invite.objects.for_org(inviter.org_id)
            .filter(invitee_id=current, flagged="")
            .values_list("inviter_id", flat=True)
            .first()
        )
        if parent is None or parent in chain:
            break
        chain.append(parent)
        current = parent
    return chain


def _is_ancestor(candidate, of) -> bool:
    return candidate.pk in _ancestors(of)


def invite_leaderboard(*, org_id: int, room_id: int | None = None, limit: int = 20) -> list[dict]:
    """邀请榜: direct invites and total credited invites (all hops), flagged ones excluded."""

    credits = InviteCredit.objects.for_org(org_id).filter(invite__flagged="")
    if room_id:
        credits = credits.filter(invite__room_id=room_id)
    rows = (
        credits.values("ancestor_id")
        .annotate(total=Count("id"), direct=Count("id", filter=_hop1()))
        .order_by("-direct", "-total", "ancestor_id")[:limit]
    )
    names = Contact.objects.for_org(org_id).in_bulk([r["ancestor_id"] for r in rows])
    return [
        {
            "contact_id": r["ancestor_id"],
            "nickname": names[r["ancestor_id"]].nickname if r["ancestor_id"] in names else "",
            "direct": r["direct"],
            "total": r["total"],
        }
        for r in rows
    ]


def invites_flagged(*, org_id: int, room_id: int | None = None, limit: int = 50) -> list[dict]:
    """Invites the fraud signals flagged (they earn no credit), newest first, with both
    people's names: what staff review next to the 邀请榜."""
    qs = (
        Invite.objects.for_org(org_id)
        .exclude(flagged="")
        .select_related("inviter", "invitee")
        .order_by("-created_at", "-id")
    )
    if room_id:
        qs = qs.filter(room_id=room_id)
    return [
        {
            "id": i.pk,
            "inviter_id": i.inviter_id,
            "inviter": i.inviter.nickname,
            "invitee_id": i.invitee_id,
            "invitee": i.invitee.nickname,
            "room": i.room_id,
            "flag": i.flagged,
            "created_at": i.created_at,
        }
        for i in qs[:limit]
    ]


def _hop1():
    return Q(hops=1)
