"""Chat posted in batches (the chat worker's path): the same answer per author as posting the
same messages one by one, with a number of queries that does not grow with the batch."""

from __future__ import annotations

import types

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from livecommerce.models import (
    ChatMessage,
    ChatRestriction,
    RestrictionKind,
    RoomChatSettings,
    SensitiveAction,
    SensitiveWord,
)
from livecommerce.realtime.chat_worker import chat_post_replies
from livecommerce.services.chat import (
    ChatAuthor,
    ChatRequest,
    chat_post,
    chat_post_batch,
    sensitive_words_forget,
)
from tests.factories import ContactFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _one_rate_window(monkeypatch):
    # Rate counters are fixed windows of the wall clock; both runs must fall in the same one.
    monkeypatch.setattr("core.ratelimit.time", types.SimpleNamespace(time=lambda: 1_800_000_000.0))


def _viewer(org, name: str) -> ChatAuthor:
    contact = ContactFactory(org=org, nickname=name)
    return ChatAuthor(org_id=org.pk, contact_id=contact.pk, nickname=name, device=f"dev-{name}")


def _answer(result) -> tuple:
    """What the author is told: the notice code, or that it was posted (status, text)."""
    if isinstance(result, ChatMessage):
        return ("posted", result.status, result.text)
    return (result.code,)


def _one_by_one(requests: list[ChatRequest]) -> list:
    results = []
    for request in requests:
        try:
            results.append(
                chat_post(room_id=request.room_id, author=request.author, text=request.text)
            )
        except Exception as exc:  # noqa: BLE001 - the refusal is the answer under test
            results.append(exc)
    return results


def test_a_mixed_batch_answers_every_author_as_posting_one_by_one(acme, host_alice):
    dan, eve, mallory, sam = (_viewer(acme, n) for n in ("dan", "eve", "mallory", "sam"))
    ChatRestriction.objects.for_org(acme).create(
        org=acme, kind=RestrictionKind.BAN, contact_id=mallory.contact_id
    )
    ChatRestriction.objects.for_org(acme).create(
        org=acme, kind=RestrictionKind.SHADOW, device=sam.device
    )
    SensitiveWord.objects.for_org(acme).create(org=acme, pattern="微信号")
    SensitiveWord.objects.for_org(acme).create(
        org=acme, pattern="垃圾", action=SensitiveAction.MASK
    )
    sensitive_words_forget(acme.pk)
    host = ChatAuthor(org_id=acme.pk, user_id=host_alice.user.pk, nickname="ignored")
    script = [
        (dan, "大家好"),
        (mallory, "我又回来了"),
        (eve, "加我微信号"),
        (dan, "再说一句"),  # over the rate: dan just spoke
        (sam, "没人看得见我"),
        (host, "欢迎大家"),
        (eve, "这个 垃圾"),  # over the rate too: a refused word still counts
        (_viewer(acme, "fay"), "这个垃圾好用吗"),
    ]

    answers = {}
    for how, post in (("single", _one_by_one), ("batch", None)):
        room = RoomFactory(streamer=host_alice.profile, status="live")
        requests = [ChatRequest(room_id=room.pk, author=a, text=t) for a, t in script]
        results = post(requests) if post else chat_post_batch(requests=requests)
        answers[how] = [_answer(r) for r in results]
        stored = ChatMessage.objects.for_org(acme).filter(room=room).order_by("pk")
        assert [(m.nickname, m.text) for m in stored] == [
            ("dan", "大家好"),
            ("sam", "没人看得见我"),
            ("Alice", "欢迎大家"),
            ("fay", "这个**好用吗"),
        ]

    assert (
        answers["batch"]
        == answers["single"]
        == [
            ("posted", "visible", "大家好"),
            ("banned",),
            ("sensitive",),
            ("rate_limited",),
            ("posted", "shadow", "没人看得见我"),
            ("posted", "visible", "欢迎大家"),
            ("rate_limited",),
            ("posted", "visible", "这个**好用吗"),
        ]
    )


def test_a_batch_reads_the_same_number_of_rows_whatever_its_size(acme, host_alice):
    rooms = [RoomFactory(streamer=host_alice.profile, status="live") for _ in range(2)]
    for room in rooms:
        RoomChatSettings.objects.for_org(acme).create(org=acme, room=room, slow_mode_seconds=5)
    host = ChatAuthor(org_id=acme.pk, user_id=host_alice.user.pk)

    def queries_for(size: int) -> int:
        requests = [ChatRequest(room_id=rooms[0].pk, author=host, text="主播说")]
        requests += [
            ChatRequest(room_id=rooms[i % 2].pk, author=_viewer(acme, f"v{size}-{i}"), text="嗨")
            for i in range(size)
        ]
        ChatRestriction.objects.for_org(acme).create(
            org=acme, kind=RestrictionKind.MUTE, contact_id=requests[1].author.contact_id
        )
        with CaptureQueriesContext(connection) as captured:
            results = chat_post_batch(requests=requests)
        assert [_answer(r)[0] for r in results] == ["posted", "muted"] + ["posted"] * (size - 1)
        return len(captured)

    # The organisation's sensitive words and platform accounts are cached for seconds; the
    # first batch loads them, so both measured batches come after one.
    queries_for(2)
    assert queries_for(3) == queries_for(60)


def test_a_row_that_cannot_be_stored_fails_only_its_author(acme, host_alice, monkeypatch):
    room = RoomFactory(streamer=host_alice.profile, status="live")
    authors = [_viewer(acme, n) for n in ("dan", "eve", "fay")]

    def insert_fails(*args, **kwargs):
        raise IntegrityError("a contact erased between check and insert")

    real_save = ChatMessage.save

    def save_fails_for_eve(message, *args, **kwargs):
        if message.nickname == "eve":
            raise IntegrityError("eve's contact is gone")
        return real_save(message, *args, **kwargs)

    monkeypatch.setattr(ChatMessage.unscoped, "bulk_create", insert_fails)
    monkeypatch.setattr(ChatMessage, "save", save_fails_for_eve)
    requests = [ChatRequest(room_id=room.pk, author=a, text="在吗") for a in authors]

    replies = chat_post_replies(requests)

    assert replies == [{}, {"code": "error"}, {}]
    stored = ChatMessage.objects.for_org(acme).filter(room=room).order_by("pk")
    assert [m.nickname for m in stored] == ["dan", "fay"]
