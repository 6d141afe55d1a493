"""Journeys (自动化旅程): trigger → steps, membership driven by events as they arrive.

Entry: ``crm.services.events.on_event_recorded`` (and ``crm.services.scoring.on_grade_changed``
as the synthetic trigger ``grade.changed``) call ``journey_enter`` for every active journey of
the organisation whose trigger matches — no cron rebuild of audiences; a batch of events
(``events_record_batch``) goes through ``_on_events``, with the same outcome. A membership is keyed
per trigger (one per reservation, one per coupon claim), so a replayed event enters nobody
twice. Steps run until a wait; waits set ``due_at`` and the periodic tick (``memberships_run_due``)
resumes them. Sends go through the same outbox and the same policy as campaigns, with a
delivery key per (membership, step) so a step can never send twice.

Step types (``Journey.steps`` entries):
- ``{"type": "wait", "seconds": n}``
- ``{"type": "wait_before_room_start", "seconds": n}`` — until the room's start minus n
- ``{"type": "wait_room_end", "seconds": n}`` — until n seconds after the room ended
- ``{"type": "wait_before_prop", "prop": "valid_until", "seconds": n}`` — until the trigger
  event's timestamp property minus n
- ``{"type": "wait_before_coupon_expiry", "seconds": n}`` — the claimed coupon's expiry minus n
- ``{"type": "exit_if_event", "event": "room.join", "same_room": true}`` — branch: stop for
  people who did it since entering
- ``{"type": "exit_unless", "condition": {...}}`` — branch on the one condition language
- ``{"type": "branch", "condition": {...}, "else_goto": i}`` — people who match go on with the
  next step, the others jump forward to step ``i`` (``len(steps)`` = the end)
- ``{"type": "send", "template": "<template key>", "fallback_template"?: "<key>"}`` — with
  ``{product}``/``{clip_url}``/``{coupon_expiry}`` a personal recall from the trigger's room
  (``campaigns.services.recall``). Optional: ``variants`` (more copies: template keys) with
  ``variant_mode`` ``fixed`` (an even stable split) or ``bandit`` on ``bandit_goal``
  (``campaigns.services.bandit``: Thompson sampling, allocations recorded per step);
  ``holdout_pct`` (members never sent this step, to measure its uplift); ``best_hour``
  (智能节奏) with ``untimed_pct`` (the randomised share sent untimed, default
  ``send_time.UNTIMED_PCT``)
- ``{"type": "tag", "tag": "..."}``, ``{"type": "assign_owner"}``,
  ``{"type": "create_task", "title": "...", "hours": n}``,
  ``{"type": "notify_owner", "title": "...", "sms_template"?, "wechat_template"?}`` — the
  workspace notification plus a service message to the owner's phone / WeChat
  (``campaigns.services.owner_notify``)

Steps are validated by ``campaigns.services.journey_edit``; a member walks the version of the
steps it entered with (``JourneyMembership.version``), so edits never move members in flight.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.models import (
    Arm,
    Channel,
    Delivery,
    DeliveryStatus,
    Journey,
    JourneyMembership,
    JourneyStepLog,
    JourneyVersion,
    MembershipState,
    MessageTemplate,
    Timing,
)
from campaigns.services import bandit, owner_notify, send_time
from campaigns.services.policy import JOURNEY, message_class_for
from campaigns.services.recall import journey_recall_copy
from campaigns.services.reminders import reservation_reminder_status
from campaigns.services.sending import sms_account_default
from core.links import absolute_reverse
from core.tasks import enqueue
from crm.conditions import ContactFacts, contact_fields_read, contact_matches, facts_load_many
from crm.models import Contact, ContactIdentity, Event, Task
from crm.services import leads
from crm.services.events import on_event_recorded, on_events_recorded
from crm.services.scoring import on_grade_changed
from livecommerce.models import Coupon, Room
from livecommerce.services.reservations import on_reminder_status, on_reservation_due

log = logging.getLogger(__name__)

_HASH_A, _MOD = 2654435761, 1000003
# A room that has not ended yet is looked at again after this long.
ROOM_POLL = timedelta(minutes=5)
MAX_STEPS_PER_RUN = 20


def connect() -> None:
    """Register the journey listeners on the CRM's event and grade hooks and the rooms'
    reminder sweep (AppConfig.ready)."""
    on_event_recorded(_on_event)
    on_events_recorded(instead_of=_on_event)(_on_events)
    on_reservation_due(_on_reservation_due)
    on_grade_changed(_on_grade_changed)

    on_reminder_status(reservation_reminder_status)


# Per-process memo of the trigger events an organisation's active journeys listen to, so the
# common case (no journey for this event type) costs no query on every recorded event —
# the per-event path has a 10 ms p99 budget. Journey saves clear it in this process (signals
# below); other processes notice a new journey within TRIGGERS_TTL seconds.
TRIGGERS_TTL = 5.0
_triggers_memo: dict[int, tuple[float, frozenset]] = {}


def _has_journeys_for(org_id: int, trigger_event: str) -> bool:
    hit = _triggers_memo.get(org_id)
    if hit is None or hit[0] <= time.monotonic():
        triggers = frozenset(
            Journey.objects.for_org(org_id)
            .filter(is_active=True)
            .values_list("trigger_event", flat=True)
        )
        hit = _triggers_memo[org_id] = (time.monotonic() + TRIGGERS_TTL, triggers)
    return trigger_event in hit[1]


def _forget_triggers(sender, instance, **kwargs) -> None:
    _triggers_memo.pop(instance.org_id, None)


def _forget_new_org(sender, instance, created, **kwargs) -> None:
    # A rolled-back test (or a restored database) may reuse an organisation id.
    if created:
        _triggers_memo.pop(instance.pk, None)


models.signals.post_save.connect(_forget_triggers, sender=Journey)
models.signals.post_delete.connect(_forget_triggers, sender=Journey)
models.signals.post_save.connect(_forget_new_org, sender="core.Organization")


def _on_event(event) -> None:
    if not _has_journeys_for(event.org_id, event.type):
        return
    journeys = Journey.objects.for_org(event.org_id).filter(
        is_active=True, trigger_event=event.type
    )
    for journey in journeys:
        context = {"event": event.pk, "room_id": event.room_id, "props": event.props or {}}
        key = _trigger_key(journey, event)
        journey_enter(journey=journey, contact=event.contact, key=key, context=context)


def _on_events(events) -> None:
    """The batch form of ``_on_event`` (``events_record_batch``): the memberships calling it
    for each event in turn would give, in the same order, with the journeys read once per
    organisation, the contacts they trigger for in one query of only the columns the
    trigger conditions read, and those conditions' events and consents in two queries. The
    per-event path read every column of every contact of the batch and then up to three
    queries per event before entering anyone (issue 20: the coupon reconciler's batches)."""
    per_org: dict[int, list] = {}
    for event in events:
        if _has_journeys_for(event.org_id, event.type):
            per_org.setdefault(event.org_id, []).append(event)
    for org_id, org_events in per_org.items():
        _enter_batch(org_id, org_events)


def _enter_batch(org_id: int, events: list) -> None:
    by_type: dict[str, list[Journey]] = {}
    journeys = (
        Journey.objects.for_org(org_id)
        .filter(is_active=True, trigger_event__in={e.type for e in events})
        .order_by("pk")
    )
    for journey in journeys:
        by_type.setdefault(journey.trigger_event, []).append(journey)
    events = [e for e in events if e.type in by_type]
    if not events:
        return
    conds = [j.trigger_condition for js in by_type.values() for j in js if j.trigger_condition]
    # Merged-away or erased since the insert: nobody to enter (the insert skipped them too).
    contacts = {
        c.pk: c
        for c in Contact.objects.for_org(org_id)
        .filter(
            pk__in={e.contact_id for e in events},
            merged_into__isnull=True,
            erased_at__isnull=True,
        )
        .only(*contact_fields_read(conds))
    }
    facts = facts_load_many(org_id, list(contacts), conds) if conds else {}
    for event in events:
        contact = contacts.get(event.contact_id)
        if contact is None:
            continue
        try:
            for journey in by_type[event.type]:
                context = {"event": event.pk, "room_id": event.room_id, "props": event.props or {}}
                entered = journey_enter(
                    journey=journey,
                    contact=contact,
                    key=_trigger_key(journey, event),
                    context=context,
                    facts=facts.get(contact.pk),
                )
                if entered is not None:
                    # Its steps may have written what a later condition reads (a sent
                    # message, a consent): this person's facts are read again at their next
                    # evaluation, as the per-event path reads them at every evaluation.
                    facts.pop(contact.pk, None)
        except Exception:
            # As for the per-event listener (crm.services.events._each): one event's failing
            # entry must not cost the rest of the batch theirs.
            log.exception("journeys failed for event %s", event.pk)


def _on_reservation_due(reservation) -> None:
    """The rooms' reminder sweep hands over a due reservation: trigger ``reservation.due``."""
    journeys = Journey.objects.for_org(reservation.org_id).filter(
        is_active=True, trigger_event="reservation.due"
    )
    for journey in journeys:
        journey_enter(
            journey=journey,
            contact=reservation.contact,
            key=f"{reservation.contact_id}:room:{reservation.room_id}",
            context={"room_id": reservation.room_id, "reservation": reservation.pk},
        )


def _on_grade_changed(contact, old_grade: str, new_grade: str) -> None:
    if not _has_journeys_for(contact.org_id, "grade.changed"):
        return
    journeys = Journey.objects.for_org(contact.org_id).filter(
        is_active=True, trigger_event="grade.changed"
    )
    for journey in journeys:
        journey_enter(
            journey=journey,
            contact=contact,
            key=f"grade:{contact.pk}:{new_grade}:{timezone.now():%Y%m%d}",
            context={"old_grade": old_grade, "new_grade": new_grade},
        )


def _trigger_key(journey: Journey, event) -> str:
    # One membership per person per room for room triggers, per event otherwise.
    if event.room_id and event.type.startswith("room."):
        return f"{event.contact_id}:room:{event.room_id}"
    return f"{event.contact_id}:event:{event.pk}"


def in_holdout(journey: Journey, contact_id: int) -> bool:
    return ((contact_id * _HASH_A + journey.pk) % _MOD) % 100 < journey.holdout_pct


def journey_enter(
    *, journey: Journey, contact, key: str, context: dict, facts: ContactFacts | None = None
) -> JourneyMembership | None:
    """Enter a person into a journey once per key (None when already in or not matching).
    ``facts``: the person's events and consents for the trigger condition, read beforehand
    (a batch reads everyone's at once), else read here."""
    if journey.trigger_condition and not contact_matches(
        contact, journey.trigger_condition, facts=facts
    ):
        return None
    state = MembershipState.HOLDOUT if in_holdout(journey, contact.pk) else MembershipState.ACTIVE
    try:
        with transaction.atomic():
            membership = JourneyMembership.objects.for_org(journey.org_id).create(
                org_id=journey.org_id,
                journey=journey,
                contact=contact,
                key=key,
                context=context,
                state=state,
                version=journey.version,
                due_at=timezone.now(),
            )
    except IntegrityError:
        return None
    if state == MembershipState.ACTIVE:
        membership_advance(membership_id=membership.pk)
    return membership


def memberships_run_due(*, limit: int = 500) -> int:
    """Resume memberships whose wait is over. Returns how many were advanced."""
    now = timezone.now()
    # Members of a paused journey are held where they are until it is activated again.
    ids = list(
        JourneyMembership.unscoped.filter(
            state=MembershipState.ACTIVE, due_at__lte=now, journey__is_active=True
        )
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for membership_id in ids:
        try:
            membership_advance(membership_id=membership_id)
        except Exception:
            log.exception("journey membership %s failed", membership_id)
    return len(ids)


def membership_advance(*, membership_id: int) -> None:
    """Run steps until a wait or the end. Locked so two ticks never run the same member."""
    with transaction.atomic():
        qs = JourneyMembership.unscoped.select_related("journey", "contact")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        membership = qs.filter(pk=membership_id, state=MembershipState.ACTIVE).first()
        if membership is None or not membership.journey.is_active:
            return
        now = timezone.now()
        if membership.due_at and membership.due_at > now:
            return
        steps = steps_of(membership)
        for _ in range(MAX_STEPS_PER_RUN):
            if membership.step_index >= len(steps):
                membership.state = MembershipState.DONE
                break
            step = steps[membership.step_index]
            outcome, until = _run_step(membership, step, now)
            if outcome == "waiting":
                membership.due_at = until
                break
            _log(membership, outcome)
            if outcome == "exited":
                membership.state = MembershipState.EXITED
                break
            if outcome == "branched":
                membership.step_index = until  # the else_goto target (forward only)
                membership.due_at = now
                continue
            membership.step_index += 1
            membership.due_at = now
        membership.save(update_fields=["state", "step_index", "due_at", "context", "updated_at"])


def steps_of(membership: JourneyMembership) -> list[dict]:
    """The steps this member walks: the journey's current ones, or the snapshot of the
    version it entered with when the journey was edited since."""
    journey = membership.journey
    if membership.version == journey.version:
        return journey.steps or []
    snapshot = (
        JourneyVersion.objects.for_org(membership.org_id)
        .filter(journey_id=journey.pk, number=membership.version)
        .values_list("steps", flat=True)
        .first()
    )
    return snapshot if snapshot is not None else []


def _log(membership: JourneyMembership, outcome: str) -> None:
    JourneyStepLog.objects.for_org(membership.org_id).get_or_create(
        org_id=membership.org_id,
        journey_id=membership.journey_id,
        membership=membership,
        step_index=membership.step_index,
        defaults={"outcome": outcome},
    )


def _room(membership: JourneyMembership):
    room_id = membership.context.get("room_id")
    return Room.objects.for_org(membership.org_id).filter(pk=room_id).first() if room_id else None


def _wait_or_pass(membership, until: datetime | None, now: datetime) -> tuple[str, datetime | None]:
    """Pass when the moment has come (logging the wait as done), else wait until it."""
    if until is None or until <= now:
        return "waited", None
    key = f"wait:{membership.step_index}"
    if membership.context.get(key) != until.isoformat():
        membership.context[key] = until.isoformat()
        membership.save(update_fields=["context"])
    return "waiting", until


def _run_step(membership: JourneyMembership, step: dict, now: datetime):
    kind = step.get("type")
    if kind == "wait":
        started = membership.context.get(f"wait:{membership.step_index}")
        until = parse_datetime(started) if started else now + timedelta(seconds=step["seconds"])
        return _wait_or_pass(membership, until, now)
    if kind == "wait_before_room_start":
        room = _room(membership)
        if room is None or room.status != "scheduled":
            return "exited", None  # nothing to remind of
        return _wait_or_pass(
            membership, room.scheduled_start - timedelta(seconds=step.get("seconds", 0)), now
        )
    if kind == "wait_room_end":
        room = _room(membership)
        if room is None:
            return "exited", None
        if room.status != "ended" or room.ended_at is None:
            return "waiting", now + ROOM_POLL
        return _wait_or_pass(
            membership, room.ended_at + timedelta(seconds=step.get("seconds", 0)), now
        )
    if kind == "wait_before_prop":
        raw = (membership.context.get("props") or {}).get(step["prop"])
        at = parse_datetime(raw) if isinstance(raw, str) else None
        if at is None:
            return "exited", None
        return _wait_or_pass(membership, at - timedelta(seconds=step.get("seconds", 0)), now)
    if kind == "wait_before_coupon_expiry":
        coupon_id = (membership.context.get("props") or {}).get("coupon")
        coupon = Coupon.objects.for_org(membership.org_id).filter(pk=coupon_id).first()
        if coupon is None:
            return "exited", None
        membership.context.setdefault("props", {})["valid_until"] = (
            f"{timezone.localtime(coupon.valid_until):%m-%d %H:%M}"
        )
        return _wait_or_pass(
            membership, coupon.valid_until - timedelta(seconds=step.get("seconds", 0)), now
        )
    if kind == "exit_if_event":
        qs = Event.objects.for_org(membership.org_id).filter(
            contact_id=membership.contact_id,
            type=step["event"],
            occurred_at__gte=membership.created_at,
        )
        if step.get("same_room") and membership.context.get("room_id"):
            qs = qs.filter(room_id=membership.context["room_id"])
        return ("exited" if qs.exists() else "passed"), None
    if kind == "exit_unless":
        return (
            "passed" if contact_matches(membership.contact, step["condition"]) else "exited"
        ), None
    if kind == "branch":
        if contact_matches(membership.contact, step["condition"]):
            return "passed", None
        return "branched", step["else_goto"]
    if kind == "send":
        return _send(membership, step), None
    if kind == "tag":
        return _tag(membership, step["tag"]), None
    if kind in ("assign_owner", "create_task", "notify_owner"):
        return _owner_action(membership, kind, step), None
    log.warning("journey %s: unknown step type %r", membership.journey_id, kind)
    return "skipped", None


def _send(membership: JourneyMembership, step: dict) -> str:
    """Queue the message through the outbox; the policy decides at send time."""

    journey = membership.journey
    step_index = membership.step_index
    copies = bandit.journey_step_copies(step)
    templates = {
        t.key: t for t in MessageTemplate.objects.for_org(membership.org_id).filter(key__in=copies)
    }
    if step["template"] not in templates:
        return "no_template"
    # The step's holdout is drawn before any copy is chosen and is never sent: its row only
    # records who was held out, so the step's uplift can be counted (bandit.py).
    holdout = bandit.journey_step_in_holdout(
        journey_id=journey.pk,
        step_index=step_index,
        contact_id=membership.contact_id,
        pct=step.get("holdout_pct", 0),
    )
    allocation = None
    if holdout:
        template = templates[step["template"]]
    else:
        template, allocation = bandit.journey_step_choose(
            journey=journey,
            step_index=step_index,
            step=step,
            templates=templates,
            contact_id=membership.contact_id,
            now=timezone.now(),
        )
    # Personal recall: the member's own product, clip and coupon expiry from the room that
    # brought them in, or the step's fallback copy when those cannot be filled.
    fallback = None
    if step.get("fallback_template"):
        fallback = (
            MessageTemplate.objects.for_org(membership.org_id)
            .filter(key=step["fallback_template"])
            .first()
        )
    template, recall_values = journey_recall_copy(
        template=template,
        fallback=fallback,
        room=_room(membership),
        contact_id=membership.contact_id,
    )
    identity = None
    account = template.provider_account
    if template.channel == Channel.SMS:
        identity = (
            ContactIdentity.objects.for_org(membership.org_id)
            .filter(contact_id=membership.contact_id, kind="phone")
            .order_by("id")
            .first()
        )
        account = account or sms_account_default(membership.org_id)
    params = {**_params(membership), **recall_values}
    key = f"journey:{membership.pk}:{step_index}"
    now = timezone.now()
    due_at = now
    timing = ""
    if step.get("best_hour") and not holdout:
        # The randomised split: a stable share goes out at once (the step's own time), so
        # the best hour's uplift is measurable (send_time.in_untimed_share).
        untimed = send_time.in_untimed_share(
            salt=send_time.journey_step_salt(journey_id=journey.pk, step_index=step_index),
            contact_id=membership.contact_id,
            pct=step.get("untimed_pct", send_time.UNTIMED_PCT),
        )
        timing = Timing.UNTIMED if untimed else Timing.TIMED
        if not untimed:
            due_at = send_time.journey_send_at(
                journey=journey, contact_id=membership.contact_id, channel=template.channel, now=now
            )
    experiment = step.get("holdout_pct", 0) > 0
    delivery, created = Delivery.objects.for_org(membership.org_id).get_or_create(
        org_id=membership.org_id,
        key=key,
        defaults={
            "journey_id": journey.pk,
            "journey_step": step_index,
            "allocation": allocation,
            "arm": (Arm.HOLDOUT if holdout else Arm.TREATMENT) if experiment else "",
            "status": DeliveryStatus.HOLDOUT if holdout else DeliveryStatus.PENDING,
            "timing": timing,
            "contact_id": membership.contact_id,
            "channel": template.channel,
            # Service only when the trigger is the person's own transaction (policy rules).
            "message_class": message_class_for(
                template=template, origin=JOURNEY, trigger=membership.journey.trigger_event
            ),
            "template": template,
            "account": account,
            "to_encrypted": identity.value_encrypted if identity else "",
            "to_hash": identity.value_hash if identity else "",
            "params": params,
            "due_at": due_at,
        },
    )
    if holdout:
        return "holdout"
    # A step timed to the member's best hour waits in the outbox for the sender's tick.
    if created and due_at <= now:
        enqueue("campaigns.send_deliveries", [delivery.pk])
    return "queued"


def _params(membership: JourneyMembership) -> dict:
    params = {"nickname": membership.contact.nickname or ""}
    props = membership.context.get("props") or {}
    params.update({k: str(v) for k, v in props.items() if isinstance(v, str | int | float)})
    room = _room(membership)
    if room is not None:
        local = timezone.localtime(room.scheduled_start)
        params.update(
            {
                "room": room.title,
                "start": f"{local:%H:%M}",
                # An ended room's link is its replay page (the replay_link journey).
                "link": absolute_reverse(
                    "live-replay" if room.status == "ended" else "live-room", args=[room.pk]
                ),
            }
        )
    return params


def _tag(membership: JourneyMembership, tag: str) -> str:
    with transaction.atomic():
        contact = (
            Contact.objects.for_org(membership.org_id)
            .select_for_update()
            .get(pk=membership.contact_id)
        )
        if tag not in (contact.tags or []):
            contact.tags = [*(contact.tags or []), tag]
            contact.save(update_fields=["tags", "updated_at"])
    return "tagged"


def _owner_action(membership: JourneyMembership, kind: str, step: dict) -> str:
    contact = Contact.objects.for_org(membership.org_id).get(pk=membership.contact_id)
    if kind == "assign_owner":
        if contact.owner_id:
            return "kept_owner"
        # The CRM's one assignment rule: round robin within the lead's team, audited.
        if not leads.leads_assign_round_robin(org_id=contact.org_id, contacts=[contact]):
            return "no_owner"
        return "assigned"
    if contact.owner_id is None:
        return "no_owner"
    title = step.get("title") or f"跟进线索 {contact.nickname or contact.pk}"
    if kind == "create_task":
        leads.task_create(
            contact=contact,
            assignee_id=contact.owner_id,
            title=title,
            due_at=timezone.now() + timedelta(hours=step.get("hours", 2)),
            context={"journey": membership.journey_id, **membership.context},
        )
        return "task_created"
    # notify_owner: the workspace notification — unless the CRM's live hot-lead routing
    # already gave one for an open hot task — and, either way, a service message to the
    # owner's WeChat / phone (the live routing only reaches the workspace).
    outcome = "already_notified"
    if (
        not Task.objects.for_org(contact.org_id)
        .filter(contact=contact, kind="hot_lead", done_at__isnull=True)
        .exists()
    ):
        leads.user_notify(
            user=contact.owner,
            org_id=contact.org_id,
            kind="journey",
            title=title,
            data={"contact": contact.pk, "journey": membership.journey_id, **membership.context},
        )
        outcome = "notified"
    if _message_owner(membership, contact, step, title) is not None:
        outcome += "+message"
    return outcome


def _message_owner(membership: JourneyMembership, contact, step: dict, title: str):
    return owner_notify.owner_message_send(
        org_id=contact.org_id,
        user=contact.owner,
        key=f"owner:{membership.pk}:{membership.step_index}",
        params={
            "title": title,
            # The lead's name and grade only: their phone never leaves the workspace.
            "lead": contact.nickname or f"#{contact.pk}",
            "grade": contact.grade or "",
            "link": absolute_reverse("workspace"),
        },
        sms_template=step.get("sms_template") or owner_notify.DEFAULT_SMS_TEMPLATE,
        wechat_template=step.get("wechat_template") or owner_notify.DEFAULT_WECHAT_TEMPLATE,
    )
