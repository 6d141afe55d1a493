"""Development SMS backend: writes each text to the log and to ``ConsoleSms`` (the demo inbox).

Receipts and replies for it are posted by hand (or by the demo page) to
``/hooks/sms/console/receipts`` ``{"delivery", "status"}`` and ``/hooks/sms/console/replies``
``{"phone", "text"}``.
"""

from __future__ import annotations

import logging
import uuid

from campaigns.channels.base import OutboundMessage, Outcome, SendResult
from campaigns.models import ConsoleSms, ProviderAccount
from core import pii

log = logging.getLogger("campaigns.sms_console")


class ConsoleSmsSender:
    max_batch = 200
    io_only = False  # writes the demo inbox (ConsoleSms rows)

    def __init__(self, account: ProviderAccount):
        self.account = account

    def group_key(self, message: OutboundMessage) -> tuple:
        return ()

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        rows, results = [], []
        for message in messages:
            message_id = f"console-{uuid.uuid4().hex}"
            text = f"【{self.account.sign_name}】{message.text}"
            log.info("SMS to %s: %s", pii.mask_phone(message.to), text)
            rows.append(
                ConsoleSms(
                    org_id=self.account.org_id,
                    delivery_id=message.delivery_id,
                    phone_masked=pii.mask_phone(message.to),
                    phone_hash=pii.lookup_hash("phone", message.to),
                    text=text,
                    message_id=message_id,
                )
            )
            results.append(SendResult(message.delivery_id, Outcome.SENT, message_id))
        ConsoleSms.unscoped.bulk_create(rows)
        return results
