"""core.hooks (how a lower layer calls the apps above it) and the staff-event publisher that
crm uses through core, with the hub registered as its implementation."""

from __future__ import annotations

import json

import pytest

from core.hooks import Hook, HookNotRegistered
from core.staff_events import send_staff_event_on_commit, staff_publisher
from livecommerce.events import publish_staff


def test_a_single_hook_has_one_implementation_and_says_when_none_is_registered():
    hook: Hook = Hook("test.single", single=True)
    with pytest.raises(HookNotRegistered):
        hook.get()
    hook.register(len)
    hook.register(str)
    assert hook.get() is str
    assert list(hook) == [str]


def test_a_hook_calls_every_registered_function_once_in_order():
    hook: Hook = Hook("test.many")
    hook.register(len)
    hook.register(str)
    hook.register(len)
    assert list(hook) == [len, str]
    hook.unregister(len)
    assert list(hook) == [str]


def test_the_hub_is_the_staff_publisher():
    assert staff_publisher.get() is publish_staff


@pytest.fixture
def published(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(staff_publisher, "_fns", [lambda message: sent.append(json.loads(message))])
    return sent


@pytest.mark.django_db
def test_a_staff_event_is_published_after_commit_only(
    published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send_staff_event_on_commit(
            org_id=1,
            user_id=2,
            type="lead.grade_changed",
            data={"contact": 3, "old_grade": "C", "grade": "A"},
        )
    assert published == []
    for callback in callbacks:
        callback()
    assert published == [
        {
            "o": 1,
            "u": 2,
            "e": {"type": "lead.grade_changed", "contact": 3, "old_grade": "C", "grade": "A"},
        }
    ]


@pytest.mark.django_db
def test_a_crm_notification_reaches_the_staff_publisher(
    published, django_capture_on_commit_callbacks, acme, sales_bob
):
    from crm.services.leads import user_notify

    with django_capture_on_commit_callbacks(execute=True):
        note = user_notify(user=sales_bob.user, org_id=acme.pk, kind="hot", title="t", data={})
    assert published[-1]["e"]["type"] == "crm.notification"
    assert published[-1]["e"]["id"] == note.pk
    assert published[-1]["u"] == sales_bob.user.pk


def test_wechat_signs_viewers_in_for_the_rooms():
    from livecommerce.services.viewers import viewer_wechat_sign_in
    from wechat.login import viewer_sign_in

    assert viewer_wechat_sign_in.get() is viewer_sign_in


def test_each_upward_call_goes_through_a_hook_the_upper_app_registered():
    from campaigns.services import staff_binding, wechat_bridge
    from crm import rooms
    from livecommerce import selectors
    from livecommerce.services.follow_qr import follow_qr_url
    from wechat import extensions, qrcodes

    assert rooms.live_room_ids.get() is selectors.room_ids_live
    assert rooms.room_exists.get() is selectors.room_exists_in_org
    assert follow_qr_url.get() is qrcodes.follow_qr_url
    assert extensions.staff_bind_scan.get() is staff_binding.staff_wechat_bind_scan
    assert extensions.staff_bind_reply_text.get() is staff_binding.staff_bind_reply_text
    assert list(extensions.inbound_sweepers) == [staff_binding.staff_wechat_bind_sweep]
    assert extensions.service_sms_send.get() is wechat_bridge._service_sms_send


def test_the_apps_figures_are_read_at_scrape_time():
    from campaigns.metrics import outbox_backlog
    from core.metrics import scrape_collectors
    from livecommerce.metrics import coupon_reconcile_backlog

    assert list(scrape_collectors) == [coupon_reconcile_backlog, outbox_backlog]
