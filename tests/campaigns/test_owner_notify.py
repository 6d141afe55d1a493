"""Hot-lead notification to the owner by WeChat or SMS: one service message through the
outbox, the one policy check and the one sender, against the local stubs with the real SDKs."""

import pytest

from campaigns.demo import seed_org
from campaigns.models import Delivery, DeliveryStatus, MessageTemplate, Provider, StaffContact
from campaigns.services import journeys
from core import pii
from crm.models import Notification
from tests.campaigns.factories import ProviderAccountFactory
from tests.factories import ContactFactory
from tests.wechat.factories import official_account
from wechat.models import WeChatFollower

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(acme, tencent_stub):
    """The shipped hot-lead journey, with a Tencent account (pointed at the stub) as the
    org's SMS account for the owner's service template."""
    seed_org(acme)
    tencent = ProviderAccountFactory(
        org=acme,
        provider=Provider.TENCENT,
        endpoint=tencent_stub.endpoint,
        sign_name="千面",
        is_default=True,
    )
    MessageTemplate.objects.for_org(acme).filter(key="owner_hot_lead_sms").update(
        provider_account=tencent, provider_template_id="2000001"
    )
    return acme


def _hot_lead(org, owner):
    return ContactFactory(org=org, owner=owner, grade="A", score=92, nickname="小红")


def _follow(org, oa, openid, subscribed=True):
    WeChatFollower.unscoped.create(
        org=org,
        account=oa,
        openid_hash=pii.lookup_hash("openid", openid),
        openid_encrypted=pii.encrypt(openid),
        subscribed=subscribed,
    )


def test_an_owner_who_follows_the_account_gets_a_wechat_template_message(
    demo, sales_bob, wechat_stub, tencent_stub, django_capture_on_commit_callbacks
):
    oa = official_account(demo)
    _follow(demo, oa, "o-bob-work")
    answer = sales_bob.client().put(
        "/api/v1/staff-contact",
        {"phone": "13900000001", "wechat_account": oa.pk, "wechat_openid": "o-bob-work"},
        format="json",
    )
    assert answer.json() == {
        "phone": "139****0001",
        "wechat_account": oa.pk,
        "has_openid": True,
        "openid_masked": "o-bo****work",
        "follows_account": True,
    }
    lead = _hot_lead(demo, sales_bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
    sent = wechat_stub.received("cgi-bin/message/template/send")
    assert [r.json()["touser"] for r in sent] == ["o-bob-work"]
    data = sent[0].json()["data"]
    assert data["lead"] == {"value": "小红"} and data["grade"] == {"value": "A"}
    assert tencent_stub.messages == []  # one channel, not both
    delivery = Delivery.objects.for_org(demo).get(key__startswith="owner:")
    assert (delivery.channel, delivery.message_class, delivery.status) == (
        "wechat_template",
        "service",
        DeliveryStatus.SENT,
    )
    assert delivery.contact_id is None  # staff, not a lead
    # The workspace notification still happens.
    assert Notification.objects.for_org(demo).filter(user=sales_bob.user).count() == 1


def test_an_owner_bound_by_scanning_gets_the_next_hot_lead_by_wechat_template(
    demo, sales_bob, wechat_stub, tencent_stub, django_capture_on_commit_callbacks
):
    """扫码绑定微信 end to end: the scan's push stores the openid and the follow state, so the
    next hot-lead notice goes as a template message, not an SMS."""
    from tests.wechat.callbacks import event_xml, push

    oa = official_account(demo)
    sales_bob.client().put("/api/v1/staff-contact", {"phone": "13900000005"}, format="json")
    started = sales_bob.client().post("/api/v1/staff-contact/wechat-bind", {}, format="json")
    assert started.status_code == 201
    scene = wechat_stub.received("cgi-bin/qrcode/create")[-1].json()["action_info"]["scene"]
    push(oa, event_xml("o-bob-scanned", "subscribe", key=f"qrscene_{scene['scene_str']}"))

    lead = _hot_lead(demo, sales_bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
    sent = wechat_stub.received("cgi-bin/message/template/send")
    assert [r.json()["touser"] for r in sent] == ["o-bob-scanned"]
    assert tencent_stub.messages == []
    delivery = Delivery.objects.for_org(demo).get(key__startswith="owner:")
    assert (delivery.channel, delivery.status) == ("wechat_template", DeliveryStatus.SENT)


def test_an_owner_who_does_not_follow_gets_a_service_sms_through_tencent(
    demo, sales_bob, wechat_stub, tencent_stub, django_capture_on_commit_callbacks
):
    oa = official_account(demo)
    _follow(demo, oa, "o-bob-left", subscribed=False)
    sales_bob.client().put(
        "/api/v1/staff-contact",
        {"phone": "13900000002", "wechat_account": oa.pk, "wechat_openid": "o-bob-left"},
        format="json",
    )
    lead = _hot_lead(demo, sales_bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
        journeys._on_grade_changed(lead, "B", "A")  # a replayed grade change: same membership
    assert wechat_stub.received("cgi-bin/message/template/send") == []
    assert tencent_stub.received == {"13900000002": 1}
    message = tencent_stub.messages[0]
    assert message["template"] == "2000001"
    assert message["params"][:2] == ["小红", "A"]
    delivery = Delivery.objects.for_org(demo).get(key__startswith="owner:")
    assert (delivery.channel, delivery.status) == ("sms", DeliveryStatus.SENT)
    # The lead's phone never goes to the owner's phone; the owner's phone is stored encrypted.
    row = StaffContact.objects.for_org(demo).get(user=sales_bob.user)
    assert "13900000002" not in row.phone_encrypted
    assert pii.decrypt(row.phone_encrypted) == "13900000002"


def test_the_live_hot_lead_task_still_gets_its_message_but_no_second_notification(
    demo, sales_bob, tencent_stub, django_capture_on_commit_callbacks
):
    from crm.models import Task

    sales_bob.client().put("/api/v1/staff-contact", {"phone": "13900000003"}, format="json")
    lead = _hot_lead(demo, sales_bob.user)
    Task.objects.for_org(demo).create(
        org=demo,
        contact=lead,
        assignee=sales_bob.user,
        kind="hot_lead",
        title="热线索",
        due_at=lead.created_at,
    )
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
    assert tencent_stub.received == {"13900000003": 1}
    assert not Notification.objects.for_org(demo).filter(user=sales_bob.user).exists()


def test_without_a_contact_point_only_the_workspace_is_notified(
    demo, sales_bob, tencent_stub, django_capture_on_commit_callbacks
):
    lead = _hot_lead(demo, sales_bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
    assert Notification.objects.for_org(demo).filter(user=sales_bob.user).count() == 1
    assert not Delivery.objects.for_org(demo).exists()
    assert tencent_stub.messages == []


def test_an_unapproved_owner_template_is_suppressed_by_the_policy_and_recorded(
    demo, sales_bob, tencent_stub, django_capture_on_commit_callbacks
):
    """The owner path goes through the one policy check at send time, like every send."""
    sales_bob.client().put("/api/v1/staff-contact", {"phone": "13900000004"}, format="json")
    lead = _hot_lead(demo, sales_bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
        MessageTemplate.objects.for_org(demo).filter(key="owner_hot_lead_sms").update(
            approval_status="rejected"
        )
    delivery = Delivery.objects.for_org(demo).get(key__startswith="owner:")
    assert (delivery.status, delivery.reason) == ("suppressed", "template_not_approved")
    assert tencent_stub.messages == []


def test_staff_contact_input_is_checked_and_scoped(sales_bob, outsider_erin, acme):
    client = sales_bob.client()
    bad = client.put("/api/v1/staff-contact", {"phone": "12345"}, format="json")
    assert bad.status_code == 400 and "phone" in bad.json()["fields"]
    no_account = client.put("/api/v1/staff-contact", {"wechat_openid": "o-x"}, format="json")
    assert no_account.status_code == 400 and "wechat_account" in no_account.json()["fields"]
    theirs = official_account(outsider_erin.membership.org, appid="wxother000000001")
    other = client.put(
        "/api/v1/staff-contact",
        {"wechat_account": theirs.pk, "wechat_openid": "o-x"},
        format="json",
    )
    assert other.status_code == 404
    assert client.get("/api/v1/staff-contact").json()["phone"] == ""
    assert outsider_erin.client().get("/api/v1/staff-contact").json()["phone"] == ""
