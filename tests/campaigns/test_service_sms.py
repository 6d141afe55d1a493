"""service_sms_send: the service-class SMS other apps (phone-binding OTP) rely on."""

import pytest

from campaigns.models import ConsoleSms, Delivery, DeliveryStatus
from campaigns.services.sending import NoSmsAccount, service_sms_send
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def otp_template(acme):
    ProviderAccountFactory(org=acme)
    return TemplateFactory(
        org=acme,
        key="otp",
        message_class="service",
        body="验证码{code}，5分钟内有效",
        param_names=["code"],
    )


def test_service_sms_is_sent_through_the_console_backend_after_commit(
    acme, otp_template, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = service_sms_send(
            org=acme, phone="13800138000", template_key="otp", params={"code": "424242"}
        )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    inbox = ConsoleSms.objects.for_org(acme).get()
    assert inbox.text == "【千面】验证码424242，5分钟内有效"
    assert inbox.phone_masked == "138****8000"


def test_service_sms_never_carries_the_marketing_opt_out_suffix(
    acme, otp_template, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        service_sms_send(org=acme, phone="13800138000", template_key="otp", params={"code": "1"})
    assert "退订" not in ConsoleSms.objects.for_org(acme).get().text
    assert "拒收" not in ConsoleSms.objects.for_org(acme).get().text


def test_a_replayed_key_sends_once(acme, otp_template, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = service_sms_send(
            org=acme, phone="13800138000", template_key="otp", params={"code": "1"}, key="k1"
        )
        second = service_sms_send(
            org=acme, phone="13800138000", template_key="otp", params={"code": "1"}, key="k1"
        )
    assert first.pk == second.pk
    assert Delivery.objects.for_org(acme).count() == 1
    assert ConsoleSms.objects.for_org(acme).count() == 1


def test_an_org_without_an_sms_account_gets_a_clear_error(acme):
    TemplateFactory(org=acme, key="otp", message_class="service")
    with pytest.raises(NoSmsAccount):
        service_sms_send(org=acme, phone="13800138000", template_key="otp", params={})
