from collections import Counter

import pytest

from crm.services.events import event_record
from livecommerce.models import DrawWinner
from livecommerce.services.draws import draw_winners_pick
from tests.factories import ContactFactory, RoomFactory


def test_pick_winners_is_unbiased_and_without_replacement():
    counts = Counter()
    for _ in range(6000):
        chosen = draw_winners_pick(list(range(6)), 2)
        assert len(set(chosen)) == 2
        counts.update(chosen)
    # Each candidate is chosen with probability 1/3: 2000 expected, allow a wide margin.
    assert all(1750 < counts[i] < 2250 for i in range(6)), counts


@pytest.mark.django_db
class TestDraws:
    def _room_with_viewers(self, host_alice, n=5):
        room = RoomFactory(streamer=host_alice.profile, status="live")
        viewers = [ContactFactory(org=room.org, nickname=f"粉丝{i}") for i in range(n)]
        for contact in viewers:
            event_record(contact=contact, type="room.join", room_id=room.pk)
        return room, viewers

    def test_host_creates_and_runs_a_draw_and_winners_are_pushed(
        self, host_alice, published, django_capture_on_commit_callbacks
    ):
        from livecommerce.services import draws

        notified = []
        draws.on_draw_won(notified.append)
        room, viewers = self._room_with_viewers(host_alice)
        client = host_alice.client()
        draw = client.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "面膜一盒", "winner_count": 2},
            format="json",
        )
        assert draw.status_code == 201
        with django_capture_on_commit_callbacks(execute=True):
            ran = client.post(f"/api/v1/draws/{draw.json()['id']}/run")
        assert ran.status_code == 200
        body = ran.json()
        assert body["candidates"] == 5 and len(body["winners"]) == 2
        assert {w["contact_id"] for w in body["winners"]} <= {v.pk for v in viewers}
        result = [e for _, e in published if e["type"] == "draw.result"][0]
        assert sorted(w.contact_id for w in notified) == sorted(
            w["contact_id"] for w in body["winners"]
        )
        assert result["winners"] == body["winners"]
        again = client.post(f"/api/v1/draws/{draw.json()['id']}/run")
        assert again.status_code == 409 and again.json()["code"] == "draw_already_run"
        assert DrawWinner.unscoped.count() == 2
        draws._winner_handlers.remove(notified.append)

    def test_keyword_draw_only_picks_commenters(self, host_alice):
        room, viewers = self._room_with_viewers(host_alice)
        from livecommerce.models import ChatMessage

        for contact, text, status in (
            (viewers[0], "我要面膜", "visible"),
            (viewers[1], "面膜面膜", "shadow"),  # shadow-banned chat never wins
            (viewers[2], "好看", "visible"),
        ):
            ChatMessage.unscoped.create(
                org=room.org, room=room, contact=contact, text=text, status=status
            )
        client = host_alice.client()
        draw = client.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "口令红包", "winner_count": 3, "eligibility": "keyword", "keyword": "面膜"},
            format="json",
        ).json()
        body = client.post(f"/api/v1/draws/{draw['id']}/run").json()
        assert [w["contact_id"] for w in body["winners"]] == [viewers[0].pk]

    def test_followers_draw_and_watched_draw(self, host_alice, viewer_dan):
        room, viewers = self._room_with_viewers(host_alice)
        viewer_dan.client().post(f"/api/v1/streamers/{host_alice.profile.pk}/follow")
        event_record(contact=viewer_dan.contact, type="room.join", room_id=room.pk)
        event_record(
            contact=viewers[1], type="room.leave", props={"watch_seconds": 700}, room_id=room.pk
        )
        client = host_alice.client()
        followers = client.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "粉丝福利", "winner_count": 5, "eligibility": "followers"},
            format="json",
        ).json()
        body = client.post(f"/api/v1/draws/{followers['id']}/run").json()
        assert [w["contact_id"] for w in body["winners"]] == [viewer_dan.contact.pk]
        watched = client.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "久看奖", "winner_count": 5, "eligibility": "watched", "min_minutes": 10},
            format="json",
        ).json()
        body = client.post(f"/api/v1/draws/{watched['id']}/run").json()
        assert [w["contact_id"] for w in body["winners"]] == [viewers[1].pk]

    def test_watched_draw_counts_the_time_present_so_far(self, host_alice):
        """Issue 17: a viewer present 75 s and still present is a "watched ≥ 1 min" candidate;
        one who joined 30 s ago is not, nor one who stayed 20 s and left."""
        from datetime import timedelta

        from django.utils import timezone

        room = RoomFactory(streamer=host_alice.profile, status="live")
        staying, newcomer, gone = (ContactFactory(org=room.org) for _ in range(3))
        now = timezone.now()
        for contact, joined in ((staying, 75), (newcomer, 30), (gone, 75)):
            event_record(
                contact=contact,
                type="room.join",
                room_id=room.pk,
                occurred_at=now - timedelta(seconds=joined),
            )
        event_record(
            contact=gone,
            type="room.leave",
            props={"watch_seconds": 20},
            room_id=room.pk,
            occurred_at=now - timedelta(seconds=55),
        )
        client = host_alice.client()
        draw = client.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "看满一分钟", "winner_count": 5, "eligibility": "watched", "min_minutes": 1},
            format="json",
        ).json()
        body = client.post(f"/api/v1/draws/{draw['id']}/run").json()
        assert [w["contact_id"] for w in body["winners"]] == [staying.pk]
        assert body["candidates"] == 1

    def test_two_tabs_count_the_overlapping_time_once(self, host_alice):
        from datetime import timedelta

        from django.utils import timezone

        from livecommerce.presence_bridge import watch_seconds_so_far

        room = RoomFactory(streamer=host_alice.profile, status="live")
        viewer = ContactFactory(org=room.org)
        now = timezone.now()
        event_record(
            contact=viewer,
            type="room.join",
            room_id=room.pk,
            occurred_at=now - timedelta(seconds=50),
        )
        event_record(
            contact=viewer,
            type="room.join",
            room_id=room.pk,
            occurred_at=now - timedelta(seconds=40),
        )
        # The second tab closes after 30 s; the first is still open: 50 s in all, not 80.
        event_record(
            contact=viewer,
            type="room.leave",
            props={"watch_seconds": 30},
            room_id=room.pk,
            occurred_at=now - timedelta(seconds=10),
        )
        assert round(watch_seconds_so_far(room, now=now)[viewer.pk]) == 50

    def test_bad_input_and_access(self, host_alice, host_frank, outsider_erin, viewer_dan):
        room = RoomFactory(streamer=host_alice.profile)
        client = host_alice.client()
        bad = client.post(f"/api/v1/rooms/{room.pk}/draws", {"winner_count": 0}, format="json")
        assert bad.status_code == 400 and {"prize", "winner_count"} <= set(bad.json()["fields"])
        no_keyword = client.post(
            f"/api/v1/rooms/{room.pk}/draws",
            {"prize": "x", "winner_count": 1, "eligibility": "keyword"},
            format="json",
        )
        assert no_keyword.status_code == 400 and "keyword" in no_keyword.json()["fields"]
        draw = client.post(
            f"/api/v1/rooms/{room.pk}/draws", {"prize": "x", "winner_count": 1}, format="json"
        ).json()
        assert host_frank.client().post(f"/api/v1/draws/{draw['id']}/run").status_code == 404
        assert outsider_erin.client().post(f"/api/v1/draws/{draw['id']}/run").status_code == 404
        assert viewer_dan.client().post(f"/api/v1/draws/{draw['id']}/run").status_code == 403
