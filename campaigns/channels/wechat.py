"""WeChat channels through wechatpy, using the WeChat engineer's client factory
(``wechat.client``: API base pointed at the stub or the real API, access token
shared across processes) and their window/follower records.

Platform rules are decided by ``campaigns.services.policy`` before a row is claimed; the
customer-service window is additionally reserved atomically right before the call
(``service_window_reserve``), so concurrent senders can never exceed WeChat's cap.
"""

from __future__ import annotations

import requests
from wechatpy.exceptions import WeChatClientException

from campaigns.channels.base import OutboundMessage, Outcome, SendResult
from campaigns.models import Channel
from wechat.client import wechat_client
from wechat.windows import service_window_reserve

# errcodes meaning "not processed, try later": -1 system busy, 45009 API quota,
# 45011 API frequency limit.
RETRYABLE_ERRCODES = {-1, 45009, 45011}


def _outcome_of(exc: Exception) -> Outcome:
    if isinstance(exc, WeChatClientException):
        return Outcome.RETRY if exc.errcode in RETRYABLE_ERRCODES else Outcome.FAILED
    if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
        return Outcome.RETRY
    return Outcome.UNKNOWN  # timeouts: the message may be out


def _data(message: OutboundMessage, names: list[str]) -> dict:
    return {name: {"value": value} for name, value in zip(names, message.params, strict=False)}


def _skip_environment_per_request(client) -> None:
    """wechatpy sends through one ``requests`` session per client
    (``wechatpy/client/base.py``), which re-reads the proxy variables and stats ~/.netrc on
    every call (``requests.Session.merge_environment_settings``, ~0.25 ms of CPU per
    message). The proxy the environment names for the API host is read once here instead."""
    http = getattr(client, "_http", None)
    if http is None:
        return
    http.proxies.update(requests.utils.get_environ_proxies(client.API_BASE_URL))
    http.trust_env = False


class WechatSender:
    def __init__(self, wechat_account, channel: str, param_names_of=None):
        self.account = wechat_account
        self.channel = channel
        self.max_batch = 500 if channel == Channel.WECHAT_MASS else 1
        # Customer-service sends reserve their window slot in the database first.
        self.io_only = channel != Channel.WECHAT_CUSTOMER
        self._client = None

    @property
    def client(self):
        if self._client is None:
            client = wechat_client(self.account)
            _skip_environment_per_request(client)
            self._client = client
        return self._client

    def group_key(self, message: OutboundMessage) -> tuple:
        if self.channel == Channel.WECHAT_MASS:
            return (message.text,)
        return ()

    def _one(self, message: OutboundMessage) -> SendResult:
        names = message.param_names
        try:
            if self.channel == Channel.WECHAT_TEMPLATE:
                res = self.client.message.send_template(
                    message.to, message.template_id, _data(message, names), url=message.link or None
                )
            elif self.channel == Channel.WECHAT_CUSTOMER:
                if not service_window_reserve(account=self.account, openid=message.to):
                    return SendResult(message.delivery_id, Outcome.FAILED, error="window_closed")
                res = self.client.message.send_text(message.to, message.text)
            else:  # mini-program subscribe message
                res = self.client.wxa.send_subscribe_message(
                    message.to, message.template_id, _data(message, names)
                )
        except Exception as exc:  # noqa: BLE001 - classify every transport/platform error
            return SendResult(message.delivery_id, _outcome_of(exc), error=str(exc)[:250])
        return SendResult(message.delivery_id, Outcome.SENT, str((res or {}).get("msgid", "")))

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if self.channel != Channel.WECHAT_MASS:
            return [self._one(m) for m in messages]
        first = messages[0]
        try:
            # clientmsgid = the batch key: WeChat refuses a second mass send with the same id.
            if first.tag_id:
                # By tag, posted directly: wechatpy 1.8.18 still sends the old group_id filter.
                res = self.client.post(
                    "message/mass/sendall",
                    data={
                        "filter": {"is_to_all": False, "tag_id": first.tag_id},
                        "msgtype": "text",
                        "text": {"content": first.text},
                        "send_ignore_reprint": 0,
                        "clientmsgid": first.batch_key,
                    },
                )
            else:
                res = self.client.message.send_mass_text(
                    [m.to for m in messages], first.text, client_msg_id=first.batch_key
                )
        except Exception as exc:  # noqa: BLE001
            outcome = _outcome_of(exc)
            return [SendResult(m.delivery_id, outcome, error=str(exc)[:250]) for m in messages]
        msg_id = str((res or {}).get("msg_id", ""))
        return [SendResult(m.delivery_id, Outcome.SENT, msg_id) for m in messages]


def wechat_sender(wechat_account, channel: str):
    if wechat_account is None:
        raise LookupError("a WeChat delivery needs a WeChat account")
    return WechatSender(wechat_account, channel)
