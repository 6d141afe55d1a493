"""The one sender interface every channel adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # the provider refused it for good (bad number, template…)
    RETRY = "retry"  # the provider certainly did NOT take it (rate limit, connection refused)
    UNKNOWN = "unknown"  # it may or may not have gone out (timeout, 5xx): never re-sent


@dataclass
class OutboundMessage:
    delivery_id: int
    to: str  # phone number or openid, decrypted just for the call
    text: str  # the rendered text (what the person reads; the console backend shows it)
    template_id: str  # provider template id
    params: list[str] = field(default_factory=list)  # positional provider parameters
    batch_key: str = ""  # SessionContext / OutId / clientmsgid: matches receipts to rows
    param_names: list[str] = field(default_factory=list)  # names of ``params`` (WeChat data)
    link: str = ""  # tracked short link, when the campaign has one
    tag_id: int | None = None  # WeChat mass only: send to this user tag (sendall by tag)


@dataclass
class StatusQuery:
    """ "What became of this message?" for a row in doubt (status polling)."""

    delivery_id: int
    to: str
    batch_key: str  # SessionContext / OutId we sent it under
    sent_after: datetime  # the provider's records are searched from here


@dataclass
class SendResult:
    delivery_id: int
    outcome: Outcome
    provider_message_id: str = ""
    error: str = ""


class Sender(Protocol):
    # The most recipients one provider request may carry.
    max_batch: int
    # True when ``send_batch`` does network I/O only (no database, no Django transaction):
    # the sender may then run it on a request thread, several requests in flight at once.
    # Adapters without the attribute run on the caller's thread.
    io_only: bool

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send messages that share template and parameters where the API needs that.

        Must return one result per message and must not raise for provider errors."""
        ...

    def group_key(self, message: OutboundMessage) -> tuple:
        """Messages with equal keys may share one provider request."""
        ...
