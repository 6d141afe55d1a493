"""Chat and moderation APIs: permissions, tenancy, validation, audit, selectors."""

from __future__ import annotations

import pytest

from core.models import AuditLog
from livecommerce.models import ChatMessage, ChatStatus
from livecommerce.selectors_chat import contacts_who_commented
from livecommerce.selectors_state import register_state_part, room_state
from livecommerce.services.chat import ChatAuthor, ChatRejected, chat_post
from tests.factories import ContactFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(host_alice):
    return RoomFactory(streamer=host_alice.profile, status="live")


def say(room, contact, text, *, device="d1"):
    return chat_post(
        room_id=room.pk,
        author=ChatAuthor(org_id=room.org_id, contact_id=contact.pk, nickname="x", device=device),
        text=text,
    )


class TestTenancy:
    def test_another_organisation_gets_404_everywhere(self, room, outsider_erin):
        client = outsider_erin.client()
        for method, path, body in [
            ("get", f"/api/v1/rooms/{room.pk}/state", None),
            ("get", f"/api/v1/rooms/{room.pk}/chat", None),
            ("post", f"/api/v1/rooms/{room.pk}/chat", {"text": "hi"}),
            ("post", f"/api/v1/rooms/{room.pk}/moderation", {"action": "mute", "contact": 1}),
            ("post", f"/api/v1/rooms/{room.pk}/announcement", {"text": "x"}),
            ("patch", f"/api/v1/rooms/{room.pk}/chat-settings", {"premoderation": True}),
            ("get", f"/api/v1/rooms/{room.pk}/moderation-log", None),
        ]:
            response = getattr(client, method)(path, body, format="json")
            assert response.status_code == 404, (path, response.status_code)

    def test_a_streamer_cannot_moderate_another_streamers_room(self, room, host_frank, viewer_dan):
        response = host_frank.client().post(
            f"/api/v1/rooms/{room.pk}/moderation",
            {"action": "mute", "contact": viewer_dan.contact.pk},
            format="json",
        )
        assert response.status_code == 404

    def test_viewers_and_sales_read_state_but_cannot_moderate(self, room, viewer_dan, sales_bob):
        assert viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/state").status_code == 200
        assert sales_bob.client().get(f"/api/v1/rooms/{room.pk}/state").status_code == 200
        response = viewer_dan.client().post(
            f"/api/v1/rooms/{room.pk}/moderation", {"action": "mute", "contact": 1}, format="json"
        )
        assert response.status_code in (401, 403)
        assert (
            sales_bob.client()
            .post(f"/api/v1/rooms/{room.pk}/announcement", {"text": "x"}, format="json")
            .status_code
            == 403
        )

    def test_a_contact_of_another_organisation_cannot_be_targeted(
        self, room, host_alice, other_org
    ):
        stranger = ContactFactory(org=other_org)
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/moderation",
            {"action": "ban", "contact": stranger.pk},
            format="json",
        )
        assert response.status_code == 400
        assert "contact" in response.json()["fields"]


class TestValidation:
    def test_moderation_input_errors_name_their_fields(self, room, host_alice):
        client = host_alice.client()
        response = client.post(
            f"/api/v1/rooms/{room.pk}/moderation", {"action": "explode"}, format="json"
        )
        assert response.status_code == 400
        assert set(response.json()["fields"]) >= {"action"}
        response = client.post(
            f"/api/v1/rooms/{room.pk}/moderation", {"action": "mute"}, format="json"
        )
        assert response.status_code == 400 and "contact" in response.json()["fields"]

    def test_sensitive_words_reject_bad_regex_and_duplicates(self, host_alice):
        client = host_alice.client()
        bad = client.post(
            "/api/v1/sensitive-words", {"pattern": "(", "is_regex": True}, format="json"
        )
        assert bad.status_code == 400 and "pattern" in bad.json()["fields"]
        assert (
            client.post("/api/v1/sensitive-words", {"pattern": "刷单"}, format="json").status_code
            == 201
        )
        dup = client.post("/api/v1/sensitive-words", {"pattern": "刷单"}, format="json")
        assert dup.status_code == 409

    def test_chat_settings_reject_out_of_range_values(self, room, host_alice):
        response = host_alice.client().patch(
            f"/api/v1/rooms/{room.pk}/chat-settings", {"slow_mode_seconds": -1}, format="json"
        )
        assert response.status_code == 400 and "slow_mode_seconds" in response.json()["fields"]

    def test_empty_and_overlong_chat_is_refused(self, room, viewer_dan):
        with pytest.raises(ChatRejected) as empty:
            say(room, viewer_dan.contact, "   ")
        assert empty.value.code == "empty"
        with pytest.raises(ChatRejected) as long:
            say(room, viewer_dan.contact, "长" * 201)
        assert long.value.code == "too_long"


class TestAuditAndAnnouncement:
    def test_every_moderation_action_is_audited(self, room, host_alice, viewer_dan):
        client = host_alice.client()
        for action in ("mute", "unmute", "ban", "unban", "shadow", "unshadow"):
            response = client.post(
                f"/api/v1/rooms/{room.pk}/moderation",
                {"action": action, "contact": viewer_dan.contact.pk, "reason": "测试"},
                format="json",
            )
            assert response.status_code == 200
        log = client.get(f"/api/v1/rooms/{room.pk}/moderation-log").json()
        assert [e["action"] for e in reversed(log)] == [
            "chat.mute",
            "chat.unmute",
            "chat.ban",
            "chat.unban",
            "chat.shadow",
            "chat.unshadow",
        ]
        assert AuditLog.objects.for_org(room.org_id).filter(actor=host_alice.user).count() == 6

    def test_the_log_names_who_did_what_to_whom_and_shows_word_list_changes(
        self, room, host_alice, viewer_dan
    ):
        """The console's 操作记录: names, a rejected pending message, the org's word list."""
        client = host_alice.client()
        client.patch(
            f"/api/v1/rooms/{room.pk}/chat-settings", {"premoderation": True}, format="json"
        )
        pending = say(room, viewer_dan.contact, "加我微信")
        assert pending.status == ChatStatus.PENDING
        client.post(f"/api/v1/rooms/{room.pk}/chat/{pending.pk}/delete")
        client.post(
            f"/api/v1/rooms/{room.pk}/moderation",
            {"action": "ban", "message": pending.pk, "by_device": True, "by_ip": True},
            format="json",
        )
        client.post("/api/v1/sensitive-words", {"pattern": "微信"}, format="json")
        client.post(f"/api/v1/rooms/{room.pk}/announcement", {"text": "文明发言"}, format="json")
        log = client.get(f"/api/v1/rooms/{room.pk}/moderation-log").json()
        assert [e["action"] for e in log] == [
            "chat.announcement",
            "chat.word_add",
            "chat.ban",
            "chat.delete",
            "chat.settings",
        ]
        assert {e["actor_name"] for e in log} == {"alice"}
        assert log[2]["target_name"] == viewer_dan.contact.nickname
        assert log[3]["detail"]["was"] == "pending"
        restrictions = client.get(f"/api/v1/rooms/{room.pk}/moderation").json()
        assert restrictions == [
            {
                **restrictions[0],
                "kind": "ban",
                "contact": viewer_dan.contact.pk,
                "contact_nickname": viewer_dan.contact.nickname,
                "by_device": True,
                "by_ip": False,  # chat_post here carries no IP
                "org_wide": False,
            }
        ]

    def test_announcement_is_pinned_in_state_and_pushed(
        self, room, host_alice, viewer_dan, django_capture_on_commit_callbacks
    ):
        from livecommerce import events

        seen = []
        events.register_publisher(lambda room_id, event: seen.append(event))
        try:
            with django_capture_on_commit_callbacks(execute=True):
                response = host_alice.client().post(
                    f"/api/v1/rooms/{room.pk}/announcement", {"text": "今晚8点抽奖"}, format="json"
                )
        finally:
            events._publishers.pop()
        assert response.status_code == 200
        assert seen == [{"type": "announcement", "text": "今晚8点抽奖", "_audience": "all"}]
        state = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/state").json()
        assert state["announcement"] == "今晚8点抽奖"
        assert state["seq"] > 0


class TestSelectors:
    def test_contacts_who_commented_counts_visible_messages_only(self, room, acme, host_alice):
        dan, eve, fay = (ContactFactory(org=acme) for _ in range(3))
        say(room, dan, "我要抽奖 666")
        say(room, eve, "666", device="d2")
        shadowed = say(room, fay, "666!!", device="d3")
        ChatMessage.unscoped.filter(pk=shadowed.pk).update(status=ChatStatus.SHADOW)
        assert contacts_who_commented(room.pk, "666") == {dan.pk, eve.pk}
        assert contacts_who_commented(room.pk, "抽奖") == {dan.pk}

    def test_state_parts_can_be_registered_by_other_features(self, room):
        register_state_part("coupons", lambda r: [{"room": r.pk}])
        try:
            state = room_state(room)
        finally:
            from livecommerce import selectors_state

            selectors_state._parts.pop("coupons")
        assert state["coupons"] == [{"room": room.pk}]
        assert {
            "seq",
            "status",
            "online",
            "likes",
            "pinned_product",
            "announcement",
            "chat",
        } <= set(state)

    def test_staff_chat_list_shows_the_moderation_queue(self, room, host_alice, viewer_dan):
        host_alice.client().patch(
            f"/api/v1/rooms/{room.pk}/chat-settings", {"premoderation": True}, format="json"
        )
        say(room, viewer_dan.contact, "待审")
        listed = host_alice.client().get(f"/api/v1/rooms/{room.pk}/chat?status=pending").json()
        assert [m["text"] for m in listed["results"]] == ["待审"]
        bad = host_alice.client().get(f"/api/v1/rooms/{room.pk}/chat?status=weird")
        assert bad.status_code == 400
