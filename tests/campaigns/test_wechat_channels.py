"""WeChat channels end to end: wechatpy clients against the WeChat API stub."""

import pytest

from campaigns.models import Delivery, DeliveryStatus
from campaigns.services.campaigns import campaign_create, campaign_launch
from tests.campaigns.factories import TemplateFactory
from tests.wechat.factories import official_account, wechat_follower

pytestmark = pytest.mark.django_db


def _follower(org, oa, openid, subscribed=True):
    return wechat_follower(org, oa, openid, subscribed=subscribed)


def test_template_message_reaches_followers_only(
    acme, wechat_stub, django_capture_on_commit_callbacks
):
    oa = official_account(acme)
    follower = _follower(acme, oa, "o-follow-1")
    gone = _follower(acme, oa, "o-gone-1", subscribed=False)
    template = TemplateFactory(
        org=acme,
        channel="wechat_template",
        message_class="service",
        body="您预约的{room}即将开播",
        provider_template_id="TPL-REMINDER",
        param_names=["room"],
    )
    campaign = campaign_create(
        org=acme,
        name="开播提醒",
        channel="wechat_template",
        wechat_account=oa,
        variants=[{"template": template}],
        params={"room": "春季上新"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)
    sent = wechat_stub.received("cgi-bin/message/template/send")
    assert [r.json()["touser"] for r in sent] == ["o-follow-1"]
    assert sent[0].json()["data"] == {"room": {"value": "春季上新"}}
    rows = {d.contact_id: d for d in Delivery.objects.for_org(acme).filter(campaign=campaign)}
    assert rows[follower.pk].status == DeliveryStatus.SENT
    assert (rows[gone.pk].status, rows[gone.pk].reason) == ("suppressed", "unsubscribed")
