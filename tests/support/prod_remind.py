"""Run inside a `make prod` layout's environment to plant a reservation whose reminder is due
now, for the beat test: ``python -m tests.support.prod_remind ENDPOINT TAG PHONE``.

A fresh organisation with the shipped reminder journey (campaigns' demo seed) on a Tencent
account pointed at the stub, a room starting in 5 minutes, and a viewer who bound PHONE and
chose an SMS reminder. Nothing is published: beat's ``livecommerce.reservations_sweep``
hands the reservation to the journey, beat's ``campaigns.tick`` runs the journey's send step
and sends the row. Also a sales rep's lead whose pool-returning task is already past its SLA, for beat's
``crm.lead_sla_sweep``. Prints one JSON line (org, room, reservation, lead, task).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta


def main(endpoint: str, tag: str, phone: str) -> dict:
    import django

    django.setup()
    from django.utils import timezone

    from campaigns.demo import seed_org
    from campaigns.models import MessageTemplate, Provider, ProviderAccount
    from core.models import Organization
    from crm.models import Contact, Task
    from crm.services.identity import identity_attach
    from livecommerce.models import Reservation, Room, StreamerProfile

    org = Organization.objects.create(slug=f"remind-{tag}", name=f"提醒{tag}")
    seed_org(org)
    ProviderAccount.objects.for_org(org).update(is_default=False)
    account = ProviderAccount.objects.for_org(org).create(
        org=org,
        provider=Provider.TENCENT,
        name="腾讯云短信（桩）",
        endpoint=endpoint,
        sign_name="千面",
        is_default=True,
        qps=10,
        access_key_id="AKIDstub",
        access_key_secret="stub-secret",  # noqa: S106 - the local stub's
        app_id="1400000000",
    )
    MessageTemplate.objects.for_org(org).filter(key="reservation_reminder").update(
        provider_account=account, provider_template_id="3000001"
    )
    streamer = StreamerProfile.objects.for_org(org).create(org=org, name="主播")
    room = Room.objects.for_org(org).create(
        org=org,
        streamer=streamer,
        title="春季上新",
        scheduled_start=timezone.now() + timedelta(minutes=5),
    )
    contact = Contact.objects.for_org(org).create(org=org)
    identity_attach(contact=contact, kind="phone", value=phone)
    now = timezone.now()
    reservation = Reservation.objects.for_org(org).create(
        org=org,
        room=room,
        contact=contact,
        remind_at=now,
        remind_channel="sms",
        remind_consent_at=now,
    )
    due_at = time.time()  # the reminder is due from here: beat alone has to notice it
    # A sales rep's hot-lead task already past its SLA: beat's crm.lead_sla_sweep must send
    # the lead back to the pool.
    from tests.factories import MembershipFactory

    rep = MembershipFactory(org=org, user__username=f"rep-{tag}").user
    lead = Contact.objects.for_org(org).create(org=org, owner=rep, status="new")
    task_at = time.time()
    task = Task.objects.for_org(org).create(
        org=org,
        contact=lead,
        assignee=rep,
        kind="call",
        title="超时测试",
        due_at=now - timedelta(seconds=1),
        returns_to_pool=True,
    )
    return {
        "org": org.pk,
        "room": room.pk,
        "reservation": reservation.pk,
        "lead": lead.pk,
        "task": task.pk,
        "reminder_due_at": due_at,
        "task_lapsed_since": task_at,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3])), flush=True)
