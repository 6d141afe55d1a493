"""Invite posters greet with the name the viewer chose, and a clip's poster never calls
itself a live broadcast."""

import pytest
from django.utils import timezone
from PIL import ImageDraw

from core.tokens import parse_token
from livecommerce.models import ProductClip
from tests.factories import ProductFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def drawn_texts(monkeypatch):
    """Every string a poster draws."""
    texts: list[str] = []
    real = ImageDraw.ImageDraw.text

    def text(self, xy, value, *args, **kwargs):
        texts.append(value)
        return real(self, xy, value, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return texts


def test_the_poster_greets_with_the_nickname_the_viewer_chose(acme, viewer_dan, drawn_texts):
    room = RoomFactory(org=acme, streamer__org=acme)
    client = viewer_dan.client()
    named = client.post("/api/v1/viewer/nickname", {"nickname": " 小红\u200b "}, format="json")
    assert named.status_code == 200 and named.json()["nickname"] == "小红"
    assert parse_token(named.json()["token"]).nickname == "小红"  # chat uses it from now on
    viewer_dan.contact.refresh_from_db()
    assert viewer_dan.contact.nickname == "小红"

    assert client.get(f"/api/v1/rooms/{room.pk}/invite-poster").status_code == 200
    assert "小红 邀请你" in drawn_texts
    assert not any("Dan" in text for text in drawn_texts)


def test_an_empty_nickname_is_a_field_error(viewer_dan):
    response = viewer_dan.client().post(
        "/api/v1/viewer/nickname", {"nickname": "  "}, format="json"
    )
    assert response.status_code == 400 and "nickname" in response.json()["fields"]


def test_a_clip_poster_says_replay_not_live(acme, viewer_dan, drawn_texts):
    room = RoomFactory(org=acme, streamer__org=acme, status="ended")
    clip = ProductClip.unscoped.create(
        org=acme,
        room=room,
        product=ProductFactory(org=acme, name="玻尿酸面膜"),
        pinned_at=timezone.now(),
        start_s=0,
        end_s=30,
    )
    response = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-poster", {"clip": clip.pk})
    assert response.status_code == 200
    joined = " ".join(drawn_texts)
    assert "LIVE" not in joined and "直播间" not in joined and "开播时间" not in joined
    assert "讲解回放" in joined

    drawn_texts.clear()
    assert viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-poster").status_code == 200
    assert "LIVE 直播" in drawn_texts  # the room's own poster is about the live
