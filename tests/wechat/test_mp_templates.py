"""Subscribe-message consents count only for templates the mini-program owns (its 我的模板 list
through wechatpy, against the stub); a WeChat that cannot say loses no viewer's yes."""

import pytest
from django.core.cache import cache

from wechat.mp import mp_consent_use

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear():
    cache.clear()
    yield
    cache.clear()


def record(viewer, results):
    return viewer.client().post(
        "/api/v1/viewer/mp-subscriptions", {"results": results}, format="json"
    )


def test_a_consent_for_a_template_the_account_does_not_own_is_not_recorded(
    acme, mp, wechat_stub, viewer_dan
):
    wechat_stub.state.mp_templates = ["TPL_LIVE"]
    response = record(viewer_dan, {"TPL_LIVE": "accept", "SOMEONE_ELSES": "accept"})
    assert response.status_code == 201, response.json()
    assert response.json()["unused"] == {"TPL_LIVE": 1, "SOMEONE_ELSES": 0}
    assert not mp_consent_use(account=mp, contact=viewer_dan.contact, template_id="SOMEONE_ELSES")
    (listing,) = wechat_stub.received("wxaapi/newtmpl/gettemplate")
    assert listing.query["access_token"]
    record(viewer_dan, {"TPL_LIVE": "accept"})
    assert len(wechat_stub.received("wxaapi/newtmpl/gettemplate")) == 1  # the list is cached


def test_when_wechat_cannot_list_templates_the_consent_is_kept(acme, mp, wechat_stub, viewer_dan):
    wechat_stub.state.mp_templates = None  # the stub answers 48001 api unauthorized
    assert record(viewer_dan, {"TPL_LIVE": "accept"}).json()["unused"] == {"TPL_LIVE": 1}
