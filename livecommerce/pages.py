"""HTML pages of the live rooms: host console, viewer H5, room list, replay/clip, streamer.

Pages are thin: they render a shell with ids in data attributes; one ES module per page
fetches state from the API and listens on the room WebSocket (static/shared/ws.js).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from core.models import Organization
from livecommerce.models import ProductClip, Room, StreamerProfile


@require_GET
def console(request):
    return render(request, "console/console.html")


@require_GET
def report(request, room_id: int | None = None):
    """The 战报 page: a room's post-broadcast report (``room_id``) or the rooms to pick from.
    The shell carries only the id; the API checks who may read it."""
    return render(request, "console/report.html", {"room_id": room_id})


@require_GET
def room_list(request):
    slug = request.GET.get("org", "")
    orgs = Organization.objects.filter(is_active=True).order_by("pk")
    org = orgs.filter(slug=slug).first() if slug else orgs.first()
    rooms = []
    if org is not None:
        rooms = (
            Room.objects.for_org(org)
            .select_related("streamer")
            .order_by("status", "-scheduled_start")[:50]
        )
    return render(request, "viewer/list.html", {"org": org, "rooms": rooms})


def _room(room_id: int) -> Room:
    return get_object_or_404(Room.unscoped.select_related("streamer", "org"), pk=room_id)


@require_GET
def viewer(request, room_id: int):
    room = _room(room_id)
    return render(request, "viewer/room.html", {"room": room, "mode": "live"})


@require_GET
def replay(request, room_id: int):
    room = _room(room_id)
    return render(request, "viewer/room.html", {"room": room, "mode": "replay"})


@require_GET
def clip(request, room_id: int, clip_id: int):
    room = _room(room_id)
    clip = get_object_or_404(ProductClip.unscoped.select_related("product"), pk=clip_id, room=room)
    return render(request, "viewer/room.html", {"room": room, "mode": "clip", "clip": clip})


@require_GET
def streamer(request, streamer_id: int):
    profile = get_object_or_404(StreamerProfile.unscoped.select_related("org"), pk=streamer_id)
    return render(request, "viewer/streamer.html", {"streamer": profile})


@require_GET
def privacy(request):
    """The viewer's privacy notice and self-service for one organisation (``?org=``)."""
    slug = request.GET.get("org", "")
    orgs = Organization.objects.filter(is_active=True).order_by("pk")
    org = get_object_or_404(orgs, slug=slug) if slug else orgs.first()
    return render(request, "viewer/privacy.html", {"org": org})
