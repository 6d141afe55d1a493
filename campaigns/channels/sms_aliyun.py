"""Alibaba Cloud SMS through alibabacloud_dysmsapi20170525: ``SendBatchSms`` (≤ 100 numbers,
per-number parameters) and ``SendSms`` for a single number.

Alibaba's API is not idempotent and the SDK must never retry on its own (no RetryOptions):
our outbox is the only guard against sending twice.
"""

from __future__ import annotations

import json

from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_util.models import RuntimeOptions
from django.conf import settings

from campaigns.channels.base import OutboundMessage, Outcome, SendResult, StatusQuery
from campaigns.models import ProviderAccount

RETRYABLE_CODES = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling")


def classify_exception(exc: Exception) -> Outcome:
    code = str(getattr(exc, "code", "") or "")
    status = getattr(exc, "status_code", None)
    if code.startswith(RETRYABLE_CODES) or status == 429:
        return Outcome.RETRY
    if "refused" in str(exc).lower():
        return Outcome.RETRY  # never reached the provider
    if status is not None and 400 <= status < 500:
        return Outcome.FAILED
    return Outcome.UNKNOWN  # timeouts and 5xx: it may have gone out


class AliyunSmsSender:
    max_batch = 100
    io_only = True

    def __init__(self, account: ProviderAccount):
        self.account = account
        self._client = None
        timeout_ms = int(settings.SMS_REQUEST_TIMEOUT * 1000)
        self.runtime = RuntimeOptions(
            autoretry=False, read_timeout=timeout_ms, connect_timeout=timeout_ms
        )

    @property
    def client(self) -> Client:
        if self._client is not None:
            return self._client
        account = self.account
        config = open_api_models.Config(
            access_key_id=account.access_key_id,
            access_key_secret=account.access_key_secret,
            endpoint=account.endpoint or "dysmsapi.aliyuncs.com",
            protocol="http" if account.endpoint.startswith("127.") else "https",
        )
        self._client = Client(config)
        return self._client

    def group_key(self, message: OutboundMessage) -> tuple:
        return (message.template_id,)

    def _params(self, message: OutboundMessage, names: list[str]) -> str:
        return json.dumps(dict(zip(names, message.params, strict=False)), ensure_ascii=False)

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        first = messages[0]
        names = [f"p{i + 1}" for i in range(len(first.params))]
        try:
            if len(messages) == 1:
                response = self.client.send_sms_with_options(
                    models.SendSmsRequest(
                        phone_numbers=first.to,
                        sign_name=self.account.sign_name,
                        template_code=first.template_id,
                        template_param=self._params(first, names),
                        out_id=first.batch_key,
                    ),
                    self.runtime,
                )
            else:
                response = self.client.send_batch_sms_with_options(
                    models.SendBatchSmsRequest(
                        phone_number_json=json.dumps([m.to for m in messages]),
                        sign_name_json=json.dumps(
                            [self.account.sign_name] * len(messages), ensure_ascii=False
                        ),
                        template_code=first.template_id,
                        template_param_json=json.dumps(
                            [json.loads(self._params(m, names)) for m in messages],
                            ensure_ascii=False,
                        ),
                        out_id=first.batch_key,
                    ),
                    self.runtime,
                )
        except Exception as exc:  # noqa: BLE001 - the SDK raises many types; classify them all
            outcome = classify_exception(exc)
            return [SendResult(m.delivery_id, outcome, error=str(exc)[:250]) for m in messages]
        body = response.body
        if body.code == "OK":
            return [SendResult(m.delivery_id, Outcome.SENT, body.biz_id or "") for m in messages]
        outcome = Outcome.RETRY if (body.code or "").startswith(RETRYABLE_CODES) else Outcome.FAILED
        error = f"{body.code}: {body.message}"[:250]
        return [SendResult(m.delivery_id, outcome, error=error) for m in messages]

    def query_status(self, queries: list[StatusQuery]) -> dict[int, str]:
        """``QuerySendDetails`` per number and send date: delivery id → "delivered" (3),
        "failed" (2) or "sent" (1: taken, no report yet) for records carrying the row's
        OutId; absent = no record."""
        from zoneinfo import ZoneInfo

        shanghai = ZoneInfo("Asia/Shanghai")
        verdicts: dict[int, str] = {}
        groups: dict[tuple[str, str], list[StatusQuery]] = {}
        for query in queries:
            day = query.sent_after.astimezone(shanghai).strftime("%Y%m%d")
            groups.setdefault((query.to, day), []).append(query)
        for (phone, day), items in groups.items():
            response = self.client.query_send_details_with_options(
                models.QuerySendDetailsRequest(
                    phone_number=phone, send_date=day, page_size=50, current_page=1
                ),
                self.runtime,
            )
            dtos = response.body.sms_send_detail_dtos
            records = {d.out_id: d for d in (dtos.sms_send_detail_dto if dtos else None) or []}
            for query in items:
                record = records.get(query.batch_key)
                if record is not None:
                    verdicts[query.delivery_id] = {3: "delivered", 2: "failed"}.get(
                        int(record.send_status or 1), "sent"
                    )
        return verdicts
