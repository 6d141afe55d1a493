"""What the callbacks record is what the campaigns sender obeys (campaigns.services.policy)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import MessageTemplate
from campaigns.services.policy import Candidate, candidates_evaluate
from crm.models import Contact
from tests.wechat.callbacks import event_xml, push, text_xml
from wechat.models import WeChatServiceWindow
from wechat.windows import openid_hash

pytestmark = pytest.mark.django_db

OPENID = "o-rules-000000000000000001"


def decision(acme, oa, channel):
    template = MessageTemplate.objects.for_org(acme).create(
        org=acme,
        name="开播提醒",
        channel=channel,
        message_class="service",
        body="您预约的直播开始了",
        approval_status="approved",
    )
    contact = Contact.objects.for_org(acme).get()
    candidate = Candidate(
        org_id=acme.pk,
        contact_id=contact.pk,
        channel=channel,
        template=template,
        to_hash=openid_hash(OPENID),
        wechat_account_id=oa.pk,
    )
    (result,) = candidates_evaluate([candidate])
    return result


def test_a_follower_gets_template_messages_until_they_unsubscribe(acme, oa):
    push(oa, event_xml(OPENID, "subscribe", create_time=1700000000))
    assert decision(acme, oa, "wechat_template").action == "send"
    push(oa, event_xml(OPENID, "unsubscribe", create_time=1700000500))
    after = decision(acme, oa, "wechat_template")
    assert (after.action, after.reason) == ("suppress", "unsubscribed")


def test_customer_messages_need_the_window_the_callback_opened(acme, oa):
    push(oa, event_xml(OPENID, "subscribe", create_time=1700000000))
    assert decision(acme, oa, "wechat_customer").action == "send"
    WeChatServiceWindow.objects.for_org(acme).update(
        last_inbound_at=timezone.now() - timedelta(hours=49)
    )
    closed = decision(acme, oa, "wechat_customer")
    assert (closed.action, closed.reason) == ("suppress", "outside_window")
    push(oa, text_xml(OPENID, "在吗", msg_id=77))  # the person writes: the window re-opens
    assert decision(acme, oa, "wechat_customer").action == "send"
