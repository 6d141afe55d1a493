"""Phone binding from the mini-program's getPhoneNumber button: the one-time code is
exchanged by the server through wechatpy (phonenumber.getPhoneNumber, against the stub)."""

import pytest
from django.core.cache import cache

from core import pii
from core.tokens import parse_token
from crm.models import ContactIdentity
from tests.factories import ContactFactory
from wechat.stub import StubUser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_limits():
    cache.clear()
    yield
    cache.clear()


def bind(viewer, code):
    return viewer.client().post("/api/v1/viewer/phone/mp", {"code": code}, format="json")


def test_the_button_code_binds_wechats_phone_to_the_viewer(acme, mp, wechat_stub, viewer_dan):
    wechat_stub.register_phone_code("btn-1", "13812345678")
    response = bind(viewer_dan, "btn-1")
    assert response.status_code == 200, response.json()
    assert response.json()["contact_id"] == viewer_dan.contact.pk
    assert parse_token(response.json()["token"]).contact_id == viewer_dan.contact.pk
    identity = ContactIdentity.objects.for_org(acme).get(kind="phone")
    assert identity.contact_id == viewer_dan.contact.pk
    assert identity.value_hash == pii.lookup_hash("phone", "13812345678")
    (exchange,) = wechat_stub.received("wxa/business/getuserphonenumber")
    assert exchange.json() == {"code": "btn-1"} and exchange.query["access_token"]
    # WeChat's codes are single use: a replay is refused with a clear answer
    again = bind(viewer_dan, "btn-1")
    assert again.status_code == 400
    assert again.json()["code"] == "phone_code_invalid"


def test_a_phone_already_known_merges_the_viewer_into_that_lead(acme, mp, wechat_stub, viewer_dan):
    known = ContactFactory(org=acme, nickname="老客户")
    from wechat.crm_bridge import identity_attach

    identity_attach(contact=known, kind="phone", value="13900001111")
    wechat_stub.register_phone_code("btn-2", "13900001111")
    response = bind(viewer_dan, "btn-2")
    assert response.status_code == 200, response.json()
    survivor = response.json()["contact_id"]
    assert survivor in {known.pk, viewer_dan.contact.pk}
    assert parse_token(response.json()["token"]).contact_id == survivor
    assert ContactIdentity.objects.for_org(acme).filter(kind="phone").count() == 1


def test_foreign_numbers_and_wechat_outages_are_clear_4xx_5xx(acme, mp, wechat_stub, viewer_dan):
    wechat_stub.register_phone_code("btn-hk", "+852 51234567")
    foreign = bind(viewer_dan, "btn-hk")
    assert foreign.status_code == 400 and foreign.json()["code"] == "phone_invalid"
    wechat_stub.fail("wxa/business/getuserphonenumber", 0, http_status=502)
    down = bind(viewer_dan, "btn-3")
    assert down.status_code == 503, down.json()
    assert not ContactIdentity.objects.for_org(acme).filter(kind="phone").exists()


def test_staff_tokens_and_missing_codes_are_refused(acme, mp, wechat_stub, viewer_dan, host_alice):
    assert (
        host_alice.client()
        .post("/api/v1/viewer/phone/mp", {"code": "x"}, format="json")
        .status_code
        == 403
    )
    assert bind(viewer_dan, "").status_code == 400
    assert StubUser  # the stub's users are not involved: the code alone names the phone
