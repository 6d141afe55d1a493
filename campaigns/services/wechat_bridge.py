"""The campaigns side of the wechat app's hooks (wechat.extensions), registered in
CampaignsConfig.ready: staff binding scans and their sweep, and the service SMS the phone
binding code travels by."""

from __future__ import annotations

from campaigns.services import staff_binding
from campaigns.services.sending import UnknownTemplate, service_sms_send
from wechat import extensions


def _service_sms_send(*, org, phone: str, template_key: str, params: dict, key: str) -> None:
    try:
        service_sms_send(org=org, phone=phone, template_key=template_key, params=params, key=key)
    except UnknownTemplate as exc:
        raise LookupError(template_key) from exc


def connect() -> None:
    extensions.staff_bind_scan.register(staff_binding.staff_wechat_bind_scan)
    extensions.staff_bind_reply_text.register(staff_binding.staff_bind_reply_text)
    extensions.inbound_sweepers.register(staff_binding.staff_wechat_bind_sweep)
    extensions.service_sms_send.register(_service_sms_send)
