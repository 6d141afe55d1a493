"""The campaign builder's tag picker: GET /api/v1/wechat/tags reads WeChat's tags/get through
wechatpy's real client against the stub; WeChat unreadable → 503 like the launch."""

import pytest

from tests.campaigns.factories import TemplateFactory
from tests.wechat.factories import official_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def oa(acme):
    return official_account(acme)


def test_sales_see_the_official_accounts_user_tags(acme, oa, sales_bob, wechat_stub):
    wechat_stub.set_tag(2, [], name="星标组")
    wechat_stub.set_tag(101, ["o-a", "o-b"], name="直播常客")

    answer = sales_bob.client().get("/api/v1/wechat/tags", {"account": oa.pk})

    assert answer.status_code == 200
    assert answer.json() == {
        "account": oa.pk,
        "account_name": oa.name,
        "tags": [
            {"id": 2, "name": "星标组", "count": 0},
            {"id": 101, "name": "直播常客", "count": 2},
        ],
    }
    calls = wechat_stub.received("cgi-bin/tags/get")
    assert len(calls) == 1 and calls[0].method == "GET" and calls[0].query["access_token"]
    # Without an account: the org's oldest active official account.
    assert sales_bob.client().get("/api/v1/wechat/tags").json()["account"] == oa.pk


@pytest.mark.parametrize("fault", [{"errcode": -1}, {"errcode": 0, "http_status": 502}])
def test_wechat_unreadable_is_503_wechat_unavailable(acme, oa, sales_bob, wechat_stub, fault):
    errcode = fault.pop("errcode")
    wechat_stub.fail("cgi-bin/tags/get", errcode, "system busy", times=5, **fault)
    answer = sales_bob.client().get("/api/v1/wechat/tags", {"account": oa.pk})
    assert answer.status_code == 503
    assert answer.json()["code"] == "wechat_unavailable"


def test_accounts_are_tenant_scoped_and_fields_named(
    acme, oa, sales_bob, other_org, viewer_dan, wechat_stub
):
    theirs = official_account(other_org, appid="wxother0000000001")
    other = sales_bob.client().get("/api/v1/wechat/tags", {"account": theirs.pk})
    assert other.status_code == 404 and "account" in other.json()["fields"]
    bad = sales_bob.client().get("/api/v1/wechat/tags", {"account": "x"})
    assert bad.status_code == 400 and "account" in bad.json()["fields"]
    assert viewer_dan.client().get("/api/v1/wechat/tags").status_code == 403
    assert not wechat_stub.received("cgi-bin/tags/get")


def test_a_campaign_created_with_a_tag_reports_it(acme, oa, sales_bob, wechat_stub):
    template = TemplateFactory(org=acme, channel="wechat_mass", body="今晚8点开播", param_names=[])
    answer = sales_bob.client().post(
        "/api/v1/campaigns",
        {
            "name": "标签群发",
            "channel": "wechat_mass",
            "wechat_account": oa.pk,
            "wechat_tag_id": 101,
            "variants": [{"template": template.pk}],
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    campaign = sales_bob.client().get(f"/api/v1/campaigns/{answer.json()['id']}").json()
    assert (campaign["wechat_tag_id"], campaign["wechat_account"]) == (101, oa.pk)
