"""The 战报's recall section (issue 22): a launched campaign sent from the room
(``source_room``) shows its holdout uplift exactly as the campaign's own statistics compute
it (``campaign_uplift``); a room without one has no ``recall`` section."""

import pytest

from campaigns.models import Arm, Delivery
from campaigns.services.campaigns import campaign_create, campaign_launch, campaign_uplift
from crm.services.events import event_record
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory
from tests.campaigns.test_uplift import _audience
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db


def test_the_recall_campaigns_uplift_is_the_campaigns_own(acme, host_alice, daytime):
    room = RoomFactory(streamer=host_alice.profile, status="ended")
    quiet = RoomFactory(streamer=host_alice.profile, status="ended")
    _audience(acme, 240)
    ProviderAccountFactory(org=acme, sign_name="千面")
    campaign = campaign_create(
        org=acme,
        name="回放召回",
        channel="sms",
        variants=[{"template": TemplateFactory(org=acme, body="回放来了")}],
        holdout_pct=50,
        source_room=room,
    )
    campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    treated = list(rows.filter(arm=Arm.TREATMENT).select_related("contact")[:30])
    held = list(rows.filter(arm=Arm.HOLDOUT).select_related("contact")[:10])
    for row in treated + held:
        event_record(contact=row.contact, type="coupon.claim")

    body = host_alice.client().get(f"/api/v1/rooms/{room.pk}/report").json()
    expected = campaign_uplift(campaign=campaign)
    recall = body["recall"]
    assert (recall["campaign"], recall["name"]) == (campaign.pk, "回放召回")
    for key in ("treatment_n", "holdout_n", "treatment_converted", "holdout_converted", "enough"):
        assert recall["uplift"][key] == expected[key]
    assert (recall["uplift"]["treatment_converted"], recall["uplift"]["holdout_converted"]) == (
        30,
        10,
    )
    assert recall["uplift"]["uplift"] == expected["uplift"]
    assert recall["uplift"]["ci95"] == expected["ci95"]

    assert "recall" not in host_alice.client().get(f"/api/v1/rooms/{quiet.pk}/report").json()
