"""Asking the SMS provider what became of ``unknown`` rows (timeouts, 5xx, crashed workers).

Receipts settle most of them; this periodic poll settles the rest: for rows left ``unknown``
longer than ``CAMPAIGNS_STATUS_POLL_AFTER_SECONDS``, the channel adapter asks the provider
(Tencent ``PullSmsSendStatusByPhoneNumber``, Alibaba ``QuerySendDetails``) for the status
of the message we sent under that row's batch key (SessionContext / OutId). The answer moves
the row to ``delivered`` / ``failed`` (or ``sent``: the provider has it, no report yet).
A message the provider has no record of is marked for review (``provider_checked_at`` set,
``error`` says so) and stays ``unknown`` — it is NEVER re-sent: Alibaba's API is not
idempotent and a late record or receipt may still turn up (receipts keep settling it).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.channels import sender_for
from campaigns.channels.base import StatusQuery
from campaigns.models import Channel, Delivery, DeliveryStatus, ProviderAccount
from core import pii

log = logging.getLogger(__name__)

# Error text of a row the provider has no record of (the review list filters on it).
NOT_AT_PROVIDER = "服务商无此记录，待人工核实"


def unknown_statuses_poll(*, limit: int = 200) -> dict[str, int]:
    """Settle up to ``limit`` unchecked ``unknown`` SMS rows from the provider's records.
    Returns counts per verdict (delivered, failed, sent, review; deferred: the provider's
    status query failed, asked again after the others)."""
    now = timezone.now()
    after = timedelta(seconds=settings.CAMPAIGNS_STATUS_POLL_AFTER_SECONDS)
    rows = list(
        Delivery.unscoped.filter(
            status=DeliveryStatus.UNKNOWN,
            channel=Channel.SMS,
            provider_checked_at__isnull=True,
            account__isnull=False,
            updated_at__lt=now - after,
        )
        .exclude(batch_key="")
        .only("id", "account_id", "to_encrypted", "batch_key", "claimed_at", "updated_at")
        .order_by("updated_at")[:limit]
    )
    counts: dict[str, int] = defaultdict(int)
    by_account: dict[int, list[Delivery]] = defaultdict(list)
    for row in rows:
        by_account[row.account_id].append(row)
    accounts = ProviderAccount.unscoped.in_bulk(list(by_account))
    for account_id, members in by_account.items():
        sender = sender_for(accounts[account_id], Channel.SMS)
        if not hasattr(sender, "query_status"):
            continue  # the console backend never leaves a message in doubt
        queries = [
            StatusQuery(
                delivery_id=r.pk,
                to=pii.decrypt(r.to_encrypted),
                batch_key=r.batch_key,
                sent_after=(r.claimed_at or r.updated_at) - timedelta(minutes=5),
            )
            for r in members
        ]
        try:
            verdicts = sender.query_status(queries)
        except Exception:  # noqa: BLE001 - provider down: leave the rows for a later poll
            log.warning("status poll of account %s failed", account_id, exc_info=True)
            # Behind every other row: the oldest rows fill ``limit`` first, so an account
            # whose provider keeps failing would otherwise take every poll's whole batch and
            # no other account's rows would ever be asked about.
            Delivery.unscoped.filter(
                pk__in=[r.pk for r in members], status=DeliveryStatus.UNKNOWN
            ).update(updated_at=now)
            counts["deferred"] += len(members)
            continue
        for row in members:
            counts[_settle(row, verdicts.get(row.pk), now)] += 1
    return dict(counts)


def _settle(row: Delivery, verdict: str | None, now) -> str:
    unknown = Delivery.unscoped.filter(pk=row.pk, status=DeliveryStatus.UNKNOWN)
    if verdict == DeliveryStatus.DELIVERED:
        unknown.update(
            status=verdict, delivered_at=now, sent_at=row.claimed_at, provider_checked_at=now,
            updated_at=now,
        )  # fmt: skip
    elif verdict in (DeliveryStatus.FAILED, DeliveryStatus.SENT):
        unknown.update(
            status=verdict, sent_at=row.claimed_at if verdict == DeliveryStatus.SENT else None,
            provider_checked_at=now, updated_at=now,
        )  # fmt: skip
    else:
        unknown.update(provider_checked_at=now, error=NOT_AT_PROVIDER, updated_at=now)
        return "review"
    return str(verdict)
