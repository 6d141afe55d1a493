"""The SMS campaign flow through the API, as a sales user drives it."""

import pytest

from campaigns.models import ConsoleSms, Delivery
from crm.services.consent import consent_grant
from tests.campaigns.factories import ProviderAccountFactory, add_phone
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

N = 60


@pytest.fixture
def audience(acme):
    """60 women in 上海 with phones and SMS consent, plus 20 men who are not in the segment."""
    ProviderAccountFactory(org=acme, sign_name="千面")
    women = []
    for i in range(N):
        contact = ContactFactory(org=acme, gender="female", city="上海")
        add_phone(contact, f"1380000{i:04d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        women.append(contact)
    for i in range(20):
        add_phone(ContactFactory(org=acme, gender="male"), f"1390000{i:04d}")
    return women


def _template(client, **extra):
    body = {
        "name": "新品上市",
        "channel": "sms",
        "message_class": "marketing",
        "body": "新品今晚8点开播，{nickname}别错过",
        "param_names": ["nickname"],
        **extra,
    }
    response = client.post("/api/v1/templates", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _campaign(client, segment_id, template_id, holdout=10):
    response = client.post(
        "/api/v1/campaigns",
        {
            "name": "上海女性新品通知",
            "channel": "sms",
            "segment": segment_id,
            "variants": [{"template": template_id}],
            "holdout_pct": holdout,
            "params": {"nickname": "亲"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _launch(client, campaign_id, capture):
    with capture(execute=True):
        response = client.post(f"/api/v1/campaigns/{campaign_id}/launch")
    assert response.status_code == 200, response.json()
    return response.json()


def test_sms_campaign_flow(sales_bob, audience, acme, daytime, django_capture_on_commit_callbacks):
    client = sales_bob.client()
    segment = client.post(
        "/api/v1/segments",
        {
            "name": "上海女性",
            "condition": {
                "all": [
                    {"field": "gender", "op": "eq", "value": "female"},
                    {"field": "city", "op": "eq", "value": "上海"},
                ]
            },
        },
        format="json",
    ).json()
    preview = client.get(f"/api/v1/segments/{segment['id']}/preview").json()
    assert preview["count"] == N

    template = _template(client)
    assert template["body"].endswith("拒收请回复R")  # the provider's opt-out suffix
    campaign = _campaign(client, segment["id"], template["id"])
    assert client.get(f"/api/v1/campaigns/{campaign['id']}/preview").json()["count"] == N

    launched = _launch(client, campaign["id"], django_capture_on_commit_callbacks)
    assert launched["planned"] == N
    rows = Delivery.objects.for_org(acme).filter(campaign_id=campaign["id"])
    assert rows.count() == N
    assert rows.values("contact_id").distinct().count() == N  # one row per recipient

    stats = client.get(f"/api/v1/campaigns/{campaign['id']}/stats").json()
    assert stats["planned"] == N
    assert 0 < stats["holdout"] < N
    assert stats["sent"] == N - stats["holdout"]
    inbox = ConsoleSms.objects.for_org(acme)
    assert inbox.count() == stats["sent"]
    assert all(m.text.endswith("拒收请回复R") for m in inbox)

    # Relaunching sends nothing twice.
    relaunched = _launch(client, campaign["id"], django_capture_on_commit_callbacks)
    assert relaunched["planned"] == 0
    assert ConsoleSms.objects.for_org(acme).count() == stats["sent"]

    deliveries = client.get(f"/api/v1/campaigns/{campaign['id']}/deliveries?page_size=500").json()
    assert deliveries["count"] == N
    assert {d["status"] for d in deliveries["results"]} == {"sent", "holdout"}

    # An uplink "T" from one reached person: the next campaign suppresses them as opted_out.
    reached = rows.filter(status="sent").select_related("contact").first()
    phone = f"1380000{audience.index(reached.contact):04d}"
    reply = client.post("/hooks/sms/console/replies", {"phone": phone, "text": "T"}, format="json")
    assert reply.status_code == 200
    second = _campaign(client, segment["id"], template["id"], holdout=0)
    _launch(client, second["id"], django_capture_on_commit_callbacks)
    row = Delivery.objects.for_org(acme).get(campaign_id=second["id"], contact=reached.contact)
    assert row.status == "suppressed" and row.reason == "opted_out"
    listed = client.get(f"/api/v1/campaigns/{second['id']}/deliveries?reason=opted_out").json()
    assert [d["contact"] for d in listed["results"]] == [reached.contact_id]


def test_outsiders_cannot_see_or_launch_another_orgs_campaign(
    sales_bob, outsider_erin, audience, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    template = _template(client)
    campaign = client.post(
        "/api/v1/campaigns",
        {"name": "全部", "channel": "sms", "variants": [{"template": template["id"]}]},
        format="json",
    ).json()
    other = outsider_erin.client()
    for path in ("", "/stats", "/deliveries", "/preview"):
        assert other.get(f"/api/v1/campaigns/{campaign['id']}{path}").status_code == 404
    assert other.post(f"/api/v1/campaigns/{campaign['id']}/launch").status_code == 404
    assert other.get("/api/v1/campaigns").json()["count"] == 0


def test_bad_input_gets_field_errors(sales_bob, audience):
    client = sales_bob.client()
    response = client.post("/api/v1/campaigns", {"name": "", "channel": "fax"}, format="json")
    assert response.status_code == 400
    assert {"name", "channel", "variants"} <= set(response.json()["fields"])
    template = _template(client)
    response = client.post(
        "/api/v1/campaigns",
        {
            "name": "坏条件",
            "channel": "sms",
            "condition": {"field": "shoe_size", "op": "eq", "value": 1},
            "variants": [{"template": template["id"]}],
        },
        format="json",
    )
    assert response.status_code == 400
