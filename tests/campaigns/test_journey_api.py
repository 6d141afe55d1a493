"""Journeys through the API: create, validate, edit without disturbing members in flight,
activate / pause / delete, tenancy and roles; the builder page."""

import pytest
import time_machine

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms, Journey, JourneyMembership
from campaigns.services import journeys
from crm.services.consent import consent_grant
from crm.services.events import event_record
from tests.campaigns.factories import TemplateFactory, add_phone, beijing
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(acme):
    seed_org(acme)
    TemplateFactory(
        org=acme, key="thanks_a", message_class="marketing", body="感谢关注A", param_names=[]
    )
    TemplateFactory(
        org=acme, key="thanks_b", message_class="marketing", body="感谢关注B", param_names=[]
    )
    return acme


def _viewer(org, phone):
    contact = ContactFactory(org=org, gender="female")
    add_phone(contact, phone)
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    return contact


FOLLOW_UP = {
    "name": "关注后跟进",
    "trigger_event": "follow",
    "trigger_condition": {"field": "gender", "op": "eq", "value": "female"},
    "steps": [
        {"type": "wait", "seconds": 3600},
        {"type": "send", "template": "thanks_a", "channel": "sms"},
        {"type": "tag", "tag": "已跟进"},
    ],
}


def test_sales_creates_a_journey_and_activating_it_lets_events_enter_people(
    demo, sales_bob, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    created = client.post("/api/v1/journeys", FOLLOW_UP, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["is_active"] is False and body["version"] == 1
    assert body["steps"][1] == {"type": "send", "template": "thanks_a", "channel": "sms"}
    viewer = _viewer(demo, "13600000011")
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=viewer, type="follow")
    assert not JourneyMembership.objects.for_org(demo).filter(journey_id=body["id"]).exists()

    activated = client.post(f"/api/v1/journeys/{body['id']}/activate")
    assert activated.json()["is_active"] is True
    with (
        time_machine.travel(beijing(10), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event_record(contact=viewer, type="follow")
    with (
        time_machine.travel(beijing(11, 1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    assert (
        ConsoleSms.objects.for_org(demo).get().text == "【千面】感谢关注A 拒收请回复R"
    )  # a follow is no transaction: marketing
    viewer.refresh_from_db()
    assert "已跟进" in viewer.tags
    detail = client.get(f"/api/v1/journeys/{body['id']}").json()
    assert detail["members"] == {"done": 1}
    assert {(c["step"], c["outcome"]) for c in detail["step_counts"]} == {
        (0, "waited"),
        (1, "queued"),
        (2, "tagged"),
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"trigger_event": "room.teleport"}, "trigger_event", "room.teleport"),
        (
            {"trigger_condition": {"all": [{"field": "gender", "op": "like", "value": "x"}]}},
            "trigger_condition",
            "all[0].op",
        ),
        ({"steps": [{"type": "wait", "seconds": -5}]}, "steps[0].seconds", "秒"),
        ({"steps": [{"type": "teleport"}]}, "steps[0].type", "teleport"),
        ({"steps": [{"type": "send", "template": "nope"}]}, "steps[0].template", "nope"),
        (
            {"steps": [{"type": "send", "template": "thanks_a", "channel": "wechat_mass"}]},
            "steps[0].channel",
            "渠道",
        ),
        (
            {
                "steps": [
                    {"type": "tag", "tag": "a"},
                    {"type": "branch", "condition": {"field": "age", "op": "gt", "value": 1}},
                ]
            },
            "steps[1].else_goto",
            "必填",
        ),
        (
            {
                "steps": [
                    {"type": "tag", "tag": "a"},
                    {
                        "type": "branch",
                        "condition": {"field": "age", "op": "gt", "value": 1},
                        "else_goto": 0,
                    },
                ]
            },
            "steps[1].else_goto",
            "后面",
        ),
        (
            {"steps": [{"type": "exit_unless", "condition": {"field": "shoe_size", "op": "eq"}}]},
            "steps[0].condition",
            "shoe_size",
        ),
        ({"steps": [{"type": "tag", "tag": "a", "colour": "red"}]}, "steps[0].colour", "字段"),
        ({"steps": [{"type": ["wait"]}]}, "steps[0].type", "未知"),
        ({"steps": [{"type": "send", "template": ["x"]}]}, "steps[0].template", "字符串"),
    ],
)
def test_bad_journeys_get_a_400_naming_the_bad_part(demo, sales_bob, change, field, words):
    response = sales_bob.client().post("/api/v1/journeys", {**FOLLOW_UP, **change}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body["fields"]) == [field]
    assert words in " ".join(body["fields"][field]) + body["message"]
    assert not Journey.objects.for_org(demo).filter(name=FOLLOW_UP["name"]).exists()


def test_editing_steps_leaves_members_in_flight_on_the_version_they_entered(
    demo, sales_bob, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    journey = client.post("/api/v1/journeys", {**FOLLOW_UP, "is_active": True}, format="json")
    journey_id = journey.json()["id"]
    early, late = _viewer(demo, "13600000012"), _viewer(demo, "13600000013")
    with (
        time_machine.travel(beijing(10), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event_record(contact=early, type="follow")
    with (
        time_machine.travel(beijing(10, 5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        edited = client.patch(
            f"/api/v1/journeys/{journey_id}",
            {
                "steps": [
                    {"type": "send", "template": "thanks_b"},
                    {"type": "wait", "seconds": 60},
                    {"type": "tag", "tag": "新版"},
                ]
            },
            format="json",
        )
        assert edited.status_code == 200 and edited.json()["version"] == 2
        event_record(contact=late, type="follow")
    with (
        time_machine.travel(beijing(11, 1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    texts = {
        s.phone_masked: s.text for s in ConsoleSms.objects.for_org(demo).order_by("created_at")
    }
    # The early member finished the steps it started (wait → A → tag), the late one the new.
    assert texts == {
        "136****0012": "【千面】感谢关注A 拒收请回复R",
        "136****0013": "【千面】感谢关注B 拒收请回复R",
    }
    early.refresh_from_db()
    late.refresh_from_db()
    assert "已跟进" in early.tags and "新版" not in early.tags
    assert "新版" in late.tags
    # Per-step counts describe the current version only.
    detail = client.get(f"/api/v1/journeys/{journey_id}").json()
    assert {(c["step"], c["outcome"], c["count"]) for c in detail["step_counts"]} == {
        (0, "queued", 1),
        (1, "waited", 1),
        (2, "tagged", 1),
    }


def test_pause_holds_members_and_only_a_paused_journey_can_be_deleted(
    demo, sales_bob, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    journey_id = client.post(
        "/api/v1/journeys", {**FOLLOW_UP, "is_active": True}, format="json"
    ).json()["id"]
    viewer = _viewer(demo, "13600000014")
    with (
        time_machine.travel(beijing(10), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event_record(contact=viewer, type="follow")
    refused = client.delete(f"/api/v1/journeys/{journey_id}")
    assert refused.status_code == 409 and refused.json()["code"] == "journey_active"
    client.post(f"/api/v1/journeys/{journey_id}/pause")
    with (
        time_machine.travel(beijing(11, 1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    assert ConsoleSms.objects.for_org(demo).count() == 0  # held while paused
    client.post(f"/api/v1/journeys/{journey_id}/activate")
    with (
        time_machine.travel(beijing(11, 2), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    assert ConsoleSms.objects.for_org(demo).count() == 1
    client.post(f"/api/v1/journeys/{journey_id}/pause")
    assert client.delete(f"/api/v1/journeys/{journey_id}").status_code == 204
    assert client.get(f"/api/v1/journeys/{journey_id}").status_code == 404


def test_a_branch_sends_people_who_do_not_match_ahead(
    demo, sales_bob, django_capture_on_commit_callbacks
):
    journey = sales_bob.client().post(
        "/api/v1/journeys",
        {
            "name": "高收入分流",
            "trigger_event": "follow",
            "is_active": True,
            "steps": [
                {
                    "type": "branch",
                    "condition": {"field": "income_level", "op": "eq", "value": "high"},
                    "else_goto": 2,
                },
                {"type": "tag", "tag": "高收入"},
                {"type": "tag", "tag": "都有"},
            ],
        },
        format="json",
    )
    assert journey.status_code == 201, journey.json()
    rich = ContactFactory(org=demo, income_level="high")
    other = ContactFactory(org=demo, income_level="low")
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=rich, type="follow")
        event_record(contact=other, type="follow")
    rich.refresh_from_db()
    other.refresh_from_db()
    assert rich.tags == ["高收入", "都有"]
    assert other.tags == ["都有"]


def test_other_organisations_get_404_and_streamers_may_not_edit(
    demo, sales_bob, admin_carol, host_alice, outsider_erin
):
    journey = Journey.objects.for_org(demo).get(key="hot_lead")
    outsider = outsider_erin.client()
    for call in (
        lambda: outsider.get(f"/api/v1/journeys/{journey.pk}"),
        lambda: outsider.patch(f"/api/v1/journeys/{journey.pk}", {"name": "x"}, format="json"),
        lambda: outsider.post(f"/api/v1/journeys/{journey.pk}/pause"),
        lambda: outsider.delete(f"/api/v1/journeys/{journey.pk}"),
    ):
        assert call().status_code == 404
    assert all(j["id"] != journey.pk for j in outsider.get("/api/v1/journeys").json())
    streamer = host_alice.client()
    assert streamer.post("/api/v1/journeys", FOLLOW_UP, format="json").status_code == 403
    assert streamer.patch(f"/api/v1/journeys/{journey.pk}", {"name": "x"}).status_code == 403
    renamed = admin_carol.client().patch(
        f"/api/v1/journeys/{journey.pk}", {"name": "热线索提醒"}, format="json"
    )
    assert renamed.status_code == 200 and renamed.json()["version"] == 1
    journey.refresh_from_db()
    assert journey.name == "热线索提醒" and journey.is_active


def test_the_schema_describes_the_journey_endpoints(anon):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/journeys"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/journeys/{journey_id}"])
    assert "post" in paths["/api/v1/journeys/{journey_id}/activate"]
    assert "post" in paths["/api/v1/journeys/{journey_id}/pause"]
    assert {"get", "put"} <= set(paths["/api/v1/staff-contact"])
    journey = schema["components"]["schemas"]["JourneyOutput"]["properties"]
    assert {"version", "steps", "trigger_condition", "members", "step_counts"} <= set(journey)
