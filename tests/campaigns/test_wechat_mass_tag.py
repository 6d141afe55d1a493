"""WeChat mass messages by user tag: sendall by tag_id with clientmsgid, the monthly quota
still counted for the tag's members known to us, and a fault on the stub."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.models import Delivery, DeliveryStatus, MessagingPolicy
from campaigns.services.campaigns import campaign_create, campaign_launch
from campaigns.services.sending import deliveries_send_due
from crm.services.consent import consent_grant
from tests.campaigns.factories import TemplateFactory
from tests.wechat.factories import official_account, wechat_follower

pytestmark = pytest.mark.django_db
TAG = 101


def _follower(org, oa, openid):
    contact = wechat_follower(org, oa, openid)
    consent_grant(contact=contact, purpose="wechat_marketing", source="test")
    return contact


@pytest.fixture
def setup(acme, wechat_stub, daytime):
    oa = official_account(acme)
    people = {openid: _follower(acme, oa, openid) for openid in ("o-a", "o-b", "o-not-in-tag")}
    # WeChat holds a member we never saw; "o-not-in-tag" follows but is not tagged.
    wechat_stub.set_tag(TAG, ["o-a", "o-b", "o-stranger"])
    template = TemplateFactory(
        org=acme, channel="wechat_mass", body="春季上新，今晚8点开播", param_names=[]
    )
    return oa, people, template


def _campaign(acme, oa, template, **extra):
    return campaign_create(
        org=acme,
        name="标签群发",
        channel="wechat_mass",
        wechat_account=oa,
        wechat_tag_id=TAG,
        variants=[{"template": template}],
        **extra,
    )


def test_a_tag_campaign_goes_out_as_one_sendall_by_tag_with_clientmsgid(
    acme, setup, wechat_stub, django_capture_on_commit_callbacks
):
    oa, people, template = setup
    campaign = _campaign(acme, oa, template)
    with django_capture_on_commit_callbacks(execute=True):
        result = campaign_launch(campaign=campaign)
    assert result["planned"] == 2  # the tag's members known to us, nobody else
    calls = wechat_stub.received("cgi-bin/message/mass/sendall")
    assert len(calls) == 1
    body = calls[0].json()
    assert body["filter"] == {"is_to_all": False, "tag_id": TAG}
    assert "group_id" not in body["filter"]
    assert body["text"] == {"content": "春季上新，今晚8点开播"}
    rows = list(Delivery.objects.for_org(acme).filter(campaign=campaign))
    assert {r.contact_id for r in rows} == {people["o-a"].pk, people["o-b"].pk}
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    assert body["clientmsgid"] == rows[0].batch_key == rows[1].batch_key
    assert wechat_stub.received("cgi-bin/message/mass/send") == []
    assert sorted(wechat_stub.mass_reached()) == ["o-a", "o-b", "o-stranger"]
    # Relaunch: nothing new, nothing twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_launch(campaign=campaign)["planned"] == 0
    assert len(wechat_stub.received("cgi-bin/message/mass/sendall")) == 1


def test_a_member_over_the_monthly_quota_turns_the_tag_send_into_an_openid_list(
    acme, setup, wechat_stub, django_capture_on_commit_callbacks
):
    oa, people, template = setup
    # Daily/weekly caps wide open: the monthly mass quota is what stops o-b.
    MessagingPolicy.objects.for_org(acme).create(org=acme, cap_per_day=10, cap_per_week=10)
    now = timezone.now()
    for _ in range(4):  # o-b already got 4 mass messages this month
        Delivery.objects.for_org(acme).create(
            org=acme,
            contact=people["o-b"],
            channel="wechat_mass",
            message_class="marketing",
            template=template,
            status=DeliveryStatus.SENT,
            sent_at=now - timedelta(minutes=5),
        )
    campaign = _campaign(acme, oa, template)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)
    rows = {d.contact_id: d for d in Delivery.objects.for_org(acme).filter(campaign=campaign)}
    assert (rows[people["o-b"].pk].status, rows[people["o-b"].pk].reason) == (
        "suppressed",
        "mass_quota",
    )
    assert rows[people["o-a"].pk].status == DeliveryStatus.SENT
    # A send by tag would have reached o-b: it went by openid list instead.
    assert wechat_stub.received("cgi-bin/message/mass/sendall") == []
    sent = wechat_stub.received("cgi-bin/message/mass/send")
    assert [r.json()["touser"] for r in sent] == [["o-a"]]
    assert wechat_stub.mass_reached() == ["o-a"]


def test_a_busy_wechat_is_retried_and_reaches_the_tag_once(
    acme, setup, wechat_stub, django_capture_on_commit_callbacks
):
    oa, people, template = setup
    wechat_stub.fail("cgi-bin/message/mass/sendall", -1, "system busy")
    campaign = _campaign(acme, oa, template)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    assert {r.status for r in rows} == {DeliveryStatus.PENDING}  # WeChat did not take it
    assert wechat_stub.mass_reached() == []
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        deliveries_send_due(campaign_id=campaign.pk)
    assert {r.status for r in rows.all()} == {DeliveryStatus.SENT}
    assert len(wechat_stub.received("cgi-bin/message/mass/sendall")) == 2
    assert sorted(wechat_stub.mass_reached()) == ["o-a", "o-b", "o-stranger"]


def test_a_tag_only_fits_an_official_account_mass_campaign(acme, sales_bob):
    template = TemplateFactory(org=acme, body="短信", param_names=[])
    response = sales_bob.client().post(
        "/api/v1/campaigns",
        {"name": "x", "channel": "sms", "variants": [{"template": template.pk}],
         "wechat_tag_id": 5},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.json()
    assert "wechat_tag_id" in response.json()["fields"], response.json()


def test_launch_is_refused_when_the_tag_cannot_be_read(
    acme, setup, wechat_stub, django_capture_on_commit_callbacks
):
    from campaigns.services.mass_tags import WeChatUnavailable

    oa, people, template = setup
    wechat_stub.fail("cgi-bin/user/tag/get", -1, "system busy")
    campaign = _campaign(acme, oa, template)
    with pytest.raises(WeChatUnavailable), django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)
    assert not Delivery.objects.for_org(acme).filter(campaign=campaign).exists()
    assert wechat_stub.received("cgi-bin/message/mass/sendall") == []
