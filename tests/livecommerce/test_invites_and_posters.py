import io

import pytest
from PIL import Image

from livecommerce.models import Invite
from livecommerce.services.invites import invite_code_for
from tests.factories import ContactFactory, RoomFactory


def _session(anon, room, name, invite="", guest_id=""):
    body = {"org": "acme", "room": room.pk, "guest_name": name}
    if invite:
        body["invite"] = invite
    if guest_id:
        body["guest_id"] = guest_id
    response = anon.post("/api/v1/viewer/session", body, format="json")
    assert response.status_code in (200, 201), response.json()
    return response.json()


@pytest.mark.django_db
class TestPoster:
    def test_viewer_gets_a_png_poster_with_their_invite_code(
        self, host_alice, viewer_dan, tmp_path
    ):
        room = RoomFactory(streamer=host_alice.profile, title="冬季护肤专场")
        response = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-poster")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.size == (750, 1200)
        assert response["X-Invite-Code"] == invite_code_for(contact=viewer_dan.contact)

    def test_a_poster_draws_titles_and_names_with_control_characters(
        self, host_alice, viewer_dan, anon
    ):
        # Found by schemathesis: a line break or U+001C in a title or nickname made the
        # text layout fail (500). Such characters are left off the poster.
        room = RoomFactory(streamer=host_alice.profile, title="冬季\n护肤\x1c专场")
        guest = _session(anon, room, "小\x1e美\r")
        response = anon.get(
            f"/api/v1/rooms/{room.pk}/invite-poster",
            HTTP_AUTHORIZATION=f"Token {guest['token']}",
        )
        assert response.status_code == 200, response.content[:200]
        assert Image.open(io.BytesIO(response.content)).size == (750, 1200)

    def test_a_clip_has_its_own_poster_and_foreign_clip_is_404(self, host_alice, viewer_dan):
        from django.utils import timezone

        from livecommerce.models import ProductClip
        from tests.factories import ProductFactory

        room = RoomFactory(streamer=host_alice.profile)
        clip = ProductClip.unscoped.create(
            org=room.org,
            room=room,
            product=ProductFactory(org=room.org, name="面膜"),
            pinned_at=timezone.now(),
            start_s=10,
            end_s=40,
        )
        url = f"/api/v1/rooms/{room.pk}/invite-poster"
        response = viewer_dan.client().get(url, {"clip": clip.pk})
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert viewer_dan.client().get(url, {"clip": 999999}).status_code == 404
        assert viewer_dan.client().get(url, {"clip": "x"}).status_code == 400

    def test_poster_is_for_viewers_of_the_same_organisation(
        self, host_alice, viewer_dan, other_org, anon
    ):
        foreign = RoomFactory(streamer__org=other_org)
        assert (
            viewer_dan.client().get(f"/api/v1/rooms/{foreign.pk}/invite-poster").status_code == 404
        )
        room = RoomFactory(streamer=host_alice.profile)
        assert anon.get(f"/api/v1/rooms/{room.pk}/invite-poster").status_code == 401
        assert host_alice.client().get(f"/api/v1/rooms/{room.pk}/invite-poster").status_code == 403


@pytest.mark.django_db
class TestShareGraph:
    def test_invites_credit_every_ancestor_and_rank_the_leaderboard(
        self, host_alice, anon, viewer_dan
    ):
        room = RoomFactory(streamer=host_alice.profile)
        a = _session(anon, room, "阿甲", guest_id="device-a-000000001")
        code_a = invite_code_for(
            contact=ContactFactory._meta.model.unscoped.get(pk=a["contact_id"])
        )
        b = _session(anon, room, "阿乙", invite=code_a, guest_id="device-b-000000001")
        code_b = invite_code_for(
            contact=ContactFactory._meta.model.unscoped.get(pk=b["contact_id"])
        )
        c = _session(anon, room, "阿丙", invite=code_b, guest_id="device-c-000000001")
        invite_c = Invite.unscoped.get(invitee_id=c["contact_id"])
        assert invite_c.depth == 2 and invite_c.flagged == ""
        board = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-leaderboard").json()
        by_name = {row["nickname"]: row for row in board}
        assert by_name["阿甲"] == {
            "contact_id": a["contact_id"],
            "nickname": "阿甲",
            "direct": 1,
            "total": 2,
        }
        assert by_name["阿乙"]["direct"] == 1 and by_name["阿乙"]["total"] == 1

    def test_same_device_invite_is_flagged_and_earns_nothing(self, host_alice, anon, viewer_dan):
        room = RoomFactory(streamer=host_alice.profile)
        a = _session(anon, room, "刷榜者", guest_id="device-x-000000001")
        owner = ContactFactory._meta.model.unscoped.get(pk=a["contact_id"])
        code = invite_code_for(contact=owner, device="device-x-0000000")
        fake = _session(anon, room, "小号", invite=code, guest_id="device-x-000000002")
        assert Invite.unscoped.get(invitee_id=fake["contact_id"]).flagged == "same_device"
        board = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-leaderboard").json()
        assert board == []

    def test_many_invitees_on_one_device_are_a_cluster(self, host_alice, anon):
        room = RoomFactory(streamer=host_alice.profile)
        a = _session(anon, room, "团长", guest_id="device-a-000000009")
        code = invite_code_for(contact=ContactFactory._meta.model.unscoped.get(pk=a["contact_id"]))
        flags = []
        for i in range(5):
            s = _session(anon, room, f"号{i}", invite=code, guest_id=f"farm-device-0001-{i}")
            flags.append(Invite.unscoped.get(invitee_id=s["contact_id"]).flagged)
        # guest ids share the first 16 characters → the same device for the first 3, then flagged.
        assert flags[:3] == ["", "", ""] and set(flags[3:]) == {"same_device"}

    def test_self_invite_is_flagged(self, acme):
        from livecommerce.services.invites import invite_accept

        contact = ContactFactory(org=acme)
        code = invite_code_for(contact=contact)
        invite = invite_accept(invitee=contact, code=code)
        assert invite.flagged == "self_invite"
        assert invite.credits.count() == 0


def test_poster_font_is_the_simplified_chinese_noto_cjk_face():
    from livecommerce.services.posters import _font

    font = _font(30)
    assert font.getname()[0] == "Noto Sans CJK SC"
    # A missing glyph would render as the same .notdef box for every character.
    assert font.getmask("直").getbbox() != font.getmask("播").getbbox() or (
        bytes(font.getmask("直")) != bytes(font.getmask("播"))
    )


def test_poster_font_comes_from_a_python_package_not_a_debian_one(settings):
    from livecommerce.services.posters import _font, poster_font_path

    settings.POSTER_FONT = ""
    path = poster_font_path()
    assert "manimgx_fonts_cjk" in path and not path.startswith("/usr/share/fonts")
    regular, bold = _font(30), _font(30, bold=True)
    assert regular.getname()[0] == bold.getname()[0] == "Noto Sans CJK SC"
    # the variable font really switches weight: bold strokes cover more pixels
    assert sum(bold.getmask("直播")) > sum(regular.getmask("直播"))


def test_without_a_cjk_font_the_poster_still_renders_and_says_why_in_the_log(
    viewer_dan, host_alice, settings, caplog
):
    settings.POSTER_FONT = "/nonexistent/no-such-cjk-font.ttc"
    room = RoomFactory(streamer=host_alice.profile)
    with caplog.at_level("WARNING", logger="livecommerce.services.posters"):
        response = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-poster")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert any("POSTER_FONT" in r.getMessage() for r in caplog.records)
