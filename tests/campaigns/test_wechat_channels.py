"""WeChat channels end to end: wechatpy clients against the WeChat API stub."""

import pytest

from campaigns.models import Delivery, DeliveryStatus
from campaigns.services.campaigns import campaign_create, campaign_launch
from tests.campaigns.factories import TemplateFactory
from tests.wechat.factories import official_account, wechat_follower

pytestmark = pytest.mark.django_db


def _follower(org, oa, openid, subscribed=True):
    return wechat_follower(org, oa, openid, subscribed=subscribed)


def test_a_segment_campaign_never_goes_out_as_template_messages(
    acme, wechat_stub, django_capture_on_commit_callbacks
):
    """WeChat template messages are service-only; a campaign is aimed at a segment, which
    is marketing whatever its template says: refused at creation, and a campaign forced into
    the table anyway is refused by the policy at send (no request reaches WeChat)."""
    from campaigns.models import Campaign, Variant
    from campaigns.services.campaigns import PolicyViolation

    oa = official_account(acme)
    follower = _follower(acme, oa, "o-follow-1")
    template = TemplateFactory(
        org=acme,
        channel="wechat_template",
        message_class="service",
        body="您预约的{room}即将开播",
        provider_template_id="TPL-REMINDER",
        param_names=["room"],
    )
    with pytest.raises(PolicyViolation):
        campaign_create(
            org=acme,
            name="开播提醒",
            channel="wechat_template",
            wechat_account=oa,
            variants=[{"template": template}],
            params={"room": "春季上新"},
        )
    from crm.services.consent import consent_grant

    consent_grant(contact=follower, purpose="wechat_marketing", source="test")
    campaign = Campaign.objects.for_org(acme).create(
        org=acme, name="forced", channel="wechat_template", message_class="service",
        wechat_account=oa, params={"room": "春季上新"},
    )  # fmt: skip
    Variant.objects.create(campaign=campaign, name="A", template=template)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)
    assert wechat_stub.received("cgi-bin/message/template/send") == []
    row = Delivery.objects.for_org(acme).get(campaign=campaign, contact=follower)
    assert (row.status, row.reason) == (DeliveryStatus.SUPPRESSED, "channel_rule")
