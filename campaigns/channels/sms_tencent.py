"""Tencent Cloud SMS through tencentcloud-sdk-python (API 2021-01-11 ``SendSms``).

One request carries up to 200 numbers sharing one template and one parameter set. The SDK
raises only on a top-level ``Error``; per-number failures come back inside
``SendStatusSet`` and are checked one by one.
"""

from __future__ import annotations

from django.conf import settings
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from campaigns.channels.base import OutboundMessage, Outcome, SendResult, StatusQuery
from campaigns.models import ProviderAccount

# Error codes that mean the request was refused before anything was sent.
RETRYABLE_CODES = ("RequestLimitExceeded", "LimitExceeded", "ResourceUnavailable")


def _e164(phone: str) -> str:
    return phone if phone.startswith("+") else f"+86{phone}"


def classify_exception(exc: TencentCloudSDKException) -> Outcome:
    code = exc.code or ""
    if code.startswith(RETRYABLE_CODES):
        return Outcome.RETRY
    if code == "ClientNetworkError" and "refused" in (exc.message or "").lower():
        return Outcome.RETRY  # never reached the provider
    if code in ("ClientNetworkError", "ServerNetworkError", "InternalError"):
        # Timeouts and 5xx: it may have gone out. Never re-sent: SendSms has no idempotency
        # key (SessionContext is only echoed back), and the status pull finds a message
        # only once its carrier receipt has arrived, so "no report" does not mean "not
        # taken" (docs/security.md, "Why a Tencent 5xx is flagged for review").
        return Outcome.UNKNOWN
    return Outcome.FAILED


def _skip_environment_per_request(client: sms_client.SmsClient) -> None:
    """The SDK reads the proxy from the environment once, when it builds its connection
    (``tencentcloud/common/http/request.py: ProxyConnection``), and passes it with every
    request; its ``requests`` session would also re-read the proxy variables and stat
    ~/.netrc on every call (``requests.Session.merge_environment_settings``): ~0.25 ms of
    CPU per ``SendSms``, a fifth of the SDK's cost, for settings that cannot change."""
    session = getattr(getattr(client.request, "conn", None), "_session", None)
    if session is not None:
        session.trust_env = False


class TencentSmsSender:
    max_batch = 200
    io_only = True

    def __init__(self, account: ProviderAccount):
        self.account = account
        self._client = None

    @property
    def client(self) -> sms_client.SmsClient:
        if self._client is not None:
            return self._client
        account = self.account
        http = HttpProfile(
            endpoint=account.endpoint or None,
            protocol="http" if account.endpoint.startswith("127.") else "https",
            reqTimeout=settings.SMS_REQUEST_TIMEOUT,
        )
        client = sms_client.SmsClient(
            credential.Credential(account.access_key_id, account.access_key_secret),
            "ap-guangzhou",
            ClientProfile(httpProfile=http),
        )
        _skip_environment_per_request(client)
        self._client = client
        return self._client

    def group_key(self, message: OutboundMessage) -> tuple:
        return (message.template_id, tuple(message.params))

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        first = messages[0]
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [_e164(m.to) for m in messages]
        request.SmsSdkAppId = self.account.app_id
        request.SignName = self.account.sign_name
        request.TemplateId = first.template_id
        request.TemplateParamSet = list(first.params)
        # Echoed back in receipts: matches a receipt to the rows of this request.
        request.SessionContext = first.batch_key
        try:
            response = self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            outcome = classify_exception(exc)
            return [SendResult(m.delivery_id, outcome, error=str(exc)[:250]) for m in messages]
        by_phone = {status.PhoneNumber: status for status in response.SendStatusSet or []}
        results = []
        for message in messages:
            status = by_phone.get(_e164(message.to))
            if status is None:
                results.append(SendResult(message.delivery_id, Outcome.UNKNOWN, error="no status"))
            elif status.Code == "Ok":
                results.append(SendResult(message.delivery_id, Outcome.SENT, status.SerialNo))
            elif (status.Code or "").startswith(RETRYABLE_CODES):
                results.append(SendResult(message.delivery_id, Outcome.RETRY, error=status.Code))
            else:
                error = f"{status.Code}: {status.Message}"[:250]
                results.append(SendResult(message.delivery_id, Outcome.FAILED, error=error))
        return results

    def query_status(self, queries: list[StatusQuery]) -> dict[int, str]:
        """``PullSmsSendStatusByPhoneNumber`` per number: delivery id → "delivered" /
        "failed" for reports carrying the row's SessionContext; absent = no record."""
        verdicts: dict[int, str] = {}
        by_phone: dict[str, list[StatusQuery]] = {}
        for query in queries:
            by_phone.setdefault(query.to, []).append(query)
        for phone, items in by_phone.items():
            request = models.PullSmsSendStatusByPhoneNumberRequest()
            request.PhoneNumber = _e164(phone)
            request.SmsSdkAppId = self.account.app_id
            request.BeginTime = int(min(q.sent_after for q in items).timestamp())
            request.Offset = 0
            request.Limit = 100
            response = self.client.PullSmsSendStatusByPhoneNumber(request)
            reports = {r.SessionContext: r for r in response.PullSmsSendStatusSet or []}
            for query in items:
                report = reports.get(query.batch_key)
                if report is not None:
                    ok = report.ReportStatus == "SUCCESS"
                    verdicts[query.delivery_id] = "delivered" if ok else "failed"
        return verdicts
