"""Channel adapters behind one sender interface (``base.Sender``).

``sender_for(account, channel)`` returns the adapter for a provider account; every adapter
takes a batch of ``OutboundMessage`` and answers one ``SendResult`` per message. Adapters do
I/O only: the policy, the outbox state machine and the token bucket live in services.
"""

from __future__ import annotations

from campaigns.channels.base import OutboundMessage, Outcome, Sender, SendResult
from campaigns.channels.sms_console import ConsoleSmsSender
from campaigns.channels.wechat import wechat_sender
from campaigns.models import Channel, Provider, ProviderAccount


def sender_for(account: ProviderAccount | None, channel: str, wechat_account=None) -> Sender:
    if channel == Channel.SMS:
        if account is None:
            raise LookupError("an SMS delivery needs a provider account")
        if account.provider == Provider.TENCENT:
            # local import: a provider SDK (Alibaba's ~0.7 s and 475 modules) only for its accounts
            from campaigns.channels.sms_tencent import TencentSmsSender

            return TencentSmsSender(account)
        if account.provider == Provider.ALIYUN:
            # local import: a provider SDK (Alibaba's ~0.7 s and 475 modules) only for its accounts
            from campaigns.channels.sms_aliyun import AliyunSmsSender

            return AliyunSmsSender(account)
        return ConsoleSmsSender(account)
    return wechat_sender(wechat_account, channel)


__all__ = ["OutboundMessage", "Outcome", "SendResult", "Sender", "sender_for"]
