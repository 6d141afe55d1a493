"""WeChat channels (template, customer-service, mass, mini-program subscribe).

Their platform rules are enforced by ``campaigns.services.policy`` for every send. The
transport goes through the WeChat engineer's wechatpy client factory
(``campaigns.services.wechat_client``) once that lands; until then a WeChat delivery that
passes the policy fails with ``wechat_client_unavailable`` instead of pretending to send.
"""

from __future__ import annotations

from campaigns.channels.base import OutboundMessage, Outcome, SendResult
from campaigns.models import ProviderAccount


class UnavailableWechatSender:
    max_batch = 1

    def __init__(self, account: ProviderAccount | None, channel: str):
        self.account = account
        self.channel = channel

    def group_key(self, message: OutboundMessage) -> tuple:
        return ()

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [
            SendResult(m.delivery_id, Outcome.FAILED, error="wechat_client_unavailable")
            for m in messages
        ]


def wechat_sender(account: ProviderAccount | None, channel: str):
    return UnavailableWechatSender(account, channel)
