"""Run inside a `make prod` layout's environment (same settings, same keys) to plant an SMS
outbox for the fault suite: ``python -m tests.support.prod_plant ENDPOINT N TAG QPS [DUE_IN_SECONDS [PROVIDER]]``.

Prints one JSON line: the org, the account's webhook token (receipts through nginx's
/hooks/), and the Delivery table. The rows are due now; beat's ``campaigns.tick`` sends them.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta


def main(
    endpoint: str, n: int, tag: str, qps: int, due_in: int = 0, provider: str = "tencent"
) -> dict:
    import django

    django.setup()
    from django.utils import timezone

    from campaigns.models import Delivery, Provider
    from core import pii
    from core.models import Organization
    from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory

    org = Organization.objects.get(slug="demo")
    account = ProviderAccountFactory(
        org=org,
        provider=Provider(provider),
        endpoint=endpoint,
        qps=qps,
        is_default=False,
        name=f"chaos-{tag}",
    )
    template = TemplateFactory(
        org=org, message_class="service", provider_account=account, body="您预约的{name}即将开播"
    )
    now = timezone.now() + timedelta(seconds=due_in)
    Delivery.objects.for_org(org).bulk_create(
        [
            Delivery(
                org=org,
                channel="sms",
                message_class="service",
                template=template,
                account=account,
                key=f"{tag}:{i}",
                to_encrypted=pii.encrypt(f"139{i:08d}"),
                to_hash=pii.lookup_hash("phone", f"139{i:08d}"),
                params={"name": "春季上新"},
                due_at=now,
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    return {
        "org": org.pk,
        "webhook_token": account.webhook_token,
        "table": Delivery._meta.db_table,
    }


if __name__ == "__main__":
    endpoint, n, tag, qps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    due_in = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    provider = sys.argv[6] if len(sys.argv) > 6 else "tencent"
    print(json.dumps(main(endpoint, n, tag, qps, due_in, provider)), flush=True)
