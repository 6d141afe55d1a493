"""A customer-service (客服消息) campaign through the API as the workspace builder sends it:
no account named (the organisation's official account is taken), marketing copy, sent only
to followers inside WeChat's 48-hour window; the rest suppressed as outside_window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Delivery, DeliveryStatus
from crm.services.consent import consent_grant
from tests.campaigns.factories import TemplateFactory
from tests.wechat.callbacks import push, text_xml
from tests.wechat.factories import official_account, wechat_follower
from wechat.models import WeChatServiceWindow
from wechat.windows import openid_hash

pytestmark = pytest.mark.django_db


def test_a_customer_service_campaign_reaches_only_the_48h_window(
    acme, sales_bob, wechat_stub, daytime, django_capture_on_commit_callbacks
):
    oa = official_account(acme)
    recent = wechat_follower(acme, oa, "o-recent-000000000000000001")
    stale = wechat_follower(acme, oa, "o-stale-0000000000000000001")
    for contact in (recent, stale):
        consent_grant(contact=contact, purpose="wechat_marketing", source="test")
    push(oa, text_xml("o-recent-000000000000000001", "在吗", msg_id=1))
    push(oa, text_xml("o-stale-0000000000000000001", "你好", msg_id=2))
    WeChatServiceWindow.objects.for_org(acme).filter(
        openid_hash=openid_hash("o-stale-0000000000000000001")
    ).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    template = TemplateFactory(
        org=acme,
        name="客服上新",
        channel="wechat_customer",
        message_class="marketing",
        body="{nickname}您好，今晚8点新品首发",
        param_names=[],
    )
    client = sales_bob.client()
    offered = client.get("/api/v1/templates?for=campaign").json()["results"]
    assert template.pk in [t["id"] for t in offered]
    created = client.post(
        "/api/v1/campaigns",
        {"name": "客服触达", "channel": "wechat_customer", "variants": [{"template": template.pk}]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["wechat_account"] == oa.pk
    with django_capture_on_commit_callbacks(execute=True):
        launched = client.post(f"/api/v1/campaigns/{created.json()['id']}/launch")
    assert launched.status_code == 200, launched.json()
    rows = {d.contact_id: d for d in Delivery.objects.for_org(acme).all()}
    assert rows[stale.pk].status == DeliveryStatus.SUPPRESSED
    assert rows[stale.pk].reason == "outside_window"
    assert rows[recent.pk].status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    sent = wechat_stub.received("cgi-bin/message/custom/send")
    assert len(sent) == 1 and "今晚8点新品首发" in str(sent[0].json())
