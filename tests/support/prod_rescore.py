"""Run inside a `make prod` layout's environment (same settings, same broker) to drive a bulk
re-score for the fault suite: ``python -m tests.support.prod_rescore plant N TAG`` makes an
organisation with the demo scoring model and N unscored contacts (half with an event) and
prints its id; ``... enqueue ORG`` hands ``crm.org_rescore`` to the layout's Celery worker as
the API does for a large organisation; ``... verify ORG`` re-scores it once more, without a
fault, and prints how many contacts that changed (0 when the faulted run converged) and how
many are still unscored.
"""

from __future__ import annotations

import json
import sys


def plant(n: int, tag: str) -> dict:
    from django.utils import timezone

    from core.models import Organization
    from crm.demo import seed_scoring_model
    from crm.models import Contact, Event

    org = Organization.objects.create(slug=f"rescore-{tag}", name=f"重算{tag}")
    seed_scoring_model(org)
    now = timezone.now()
    year = now.year
    contacts = Contact.objects.for_org(org).bulk_create(
        (
            Contact(
                org=org,
                gender=("female", "male", "unknown")[i % 3],
                birth_year=year - 20 - i % 20,
                income_level=("low", "mid", "high", "")[i % 4],
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    Event.objects.for_org(org).bulk_create(
        (
            Event(
                org=org,
                contact=c,
                type=("coupon.claim", "chat", "order", "room.leave")[i % 4],
                occurred_at=now,
                value=700 if i % 4 == 3 else (99 if i % 4 == 2 else None),
            )
            for i, c in enumerate(contacts)
            if i % 2 == 0
        ),
        batch_size=5000,
    )
    return {"org": org.pk, "contacts": n}


def enqueue(org_id: int) -> dict:
    from crm.services.rescore_jobs import progress_reporter
    from crm.tasks import org_rescore_task

    progress_reporter(org_id)
    org_rescore_task.apply_async(args=[org_id])
    return {"org": org_id, "queued": True}


def verify(org_id: int) -> dict:
    from crm.models import Contact
    from crm.services.scoring import org_rescore

    unscored = Contact.objects.for_org(org_id).filter(score__isnull=True).count()
    result = org_rescore(org_id=org_id)
    return {"org": org_id, "unscored_before": unscored, "changed": result.changed}


if __name__ == "__main__":
    import django

    django.setup()
    command, *args = sys.argv[1:]
    if command == "plant":
        out = plant(int(args[0]), args[1])
    elif command == "enqueue":
        out = enqueue(int(args[0]))
    else:
        out = verify(int(args[0]))
    print(json.dumps(out), flush=True)
