"""The sales workflow on a lead: owner, status, notes, tasks, round-robin assignment, the pool
(公海) sweep and hot-lead routing during a live broadcast."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError
from core.models import Membership, Role
from crm.models import (
    Contact,
    CrmSettings,
    Event,
    LeadStatus,
    Note,
    Notification,
    Task,
    TaskKind,
)

log = logging.getLogger(__name__)
UNSET = object()  # "owner not given" (None means: back to the pool)


class InvalidOwner(DomainError):
    code = "invalid_owner"


def crm_settings_for(org_id: int) -> CrmSettings:
    settings, _ = CrmSettings.objects.for_org(org_id).get_or_create(org_id=org_id)
    return settings


def _member_user(org_id: int, user_id: int):
    membership = (
        Membership.objects.select_related("user")
        .filter(org_id=org_id, user_id=user_id, user__is_active=True)
        .first()
    )
    if membership is None:
        raise InvalidOwner(_("负责人必须是本组织成员"), fields={"owner": [_("不是本组织成员")]})
    return membership.user


def lead_update(
    *,
    contact: Contact,
    actor=None,
    owner_id: int | None | object = UNSET,
    status: str | None = None,
    tags: list[str] | None = None,
) -> Contact:
    """Change owner (None = back to the pool), status and tags of a lead."""
    fields = []
    if owner_id is not UNSET:
        contact.owner = _member_user(contact.org_id, owner_id) if owner_id is not None else None
        fields.append("owner")
    if status is not None:
        if status not in LeadStatus.values:
            raise DomainError(_("未知状态"), fields={"status": [status]})
        contact.status = status
        fields.append("status")
    if tags is not None:
        contact.tags = sorted({t.strip()[:20] for t in tags if t.strip()})
        fields.append("tags")
    if fields:
        contact.save(update_fields=[*fields, "updated_at"])
    return contact


def note_add(*, contact: Contact, author, body: str) -> Note:
    return Note.objects.for_org(contact.org_id).create(
        org_id=contact.org_id, contact=contact, author=author, body=body
    )


def task_create(
    *,
    contact: Contact,
    assignee_id: int | None,
    title: str,
    due_at: datetime,
    kind: str = TaskKind.FOLLOW_UP,
    returns_to_pool: bool = False,
    context: dict | None = None,
) -> Task:
    assignee = _member_user(contact.org_id, assignee_id) if assignee_id else None
    return Task.objects.for_org(contact.org_id).create(
        org_id=contact.org_id,
        contact=contact,
        assignee=assignee,
        title=title,
        due_at=due_at,
        kind=kind,
        returns_to_pool=returns_to_pool,
        context=context or {},
    )


def task_complete(*, task: Task) -> Task:
    if task.done_at is None:
        task.done_at = timezone.now()
        task.save(update_fields=["done_at", "updated_at"])
    return task


def assign_round_robin(*, org_id: int) -> object | None:
    """The next sales member in turn (admins when the org has no sales staff)."""
    with transaction.atomic():
        settings = (
            CrmSettings.objects.for_org(org_id).select_for_update().filter(org_id=org_id).first()
        ) or crm_settings_for(org_id)
        users = list(
            get_user_model()
            .objects.filter(membership__org_id=org_id, membership__role=Role.SALES, is_active=True)
            .order_by("id")
        ) or list(
            get_user_model()
            .objects.filter(membership__org_id=org_id, membership__role=Role.ADMIN, is_active=True)
            .order_by("id")
        )
        if not users:
            return None
        user = users[settings.round_robin_cursor % len(users)]
        settings.round_robin_cursor += 1
        settings.save(update_fields=["round_robin_cursor", "updated_at"])
        return user


def leads_assign_round_robin(*, org_id: int, contacts: list[Contact]) -> int:
    """Give each unowned lead the next owner in turn (within its team: crm.services.teams)."""
    from crm.services.teams import owner_for_lead

    assigned = 0
    for contact in contacts:
        if contact.owner_id is None:
            owner = owner_for_lead(contact=contact)
            if owner is None:
                break
            Contact.objects.for_org(org_id).filter(pk=contact.pk).update(owner=owner)
            contact.owner = owner
            assigned += 1
    return assigned


def notify(*, user, org_id: int, kind: str, title: str, data: dict) -> Notification:
    """A notification row (the truth) and a real-time hint to the user's workspace."""
    note = Notification.objects.for_org(org_id).create(
        org_id=org_id, user=user, kind=kind, title=title, data=data
    )
    try:
        from livecommerce.events import send_staff_event_on_commit
    except ImportError:  # the real-time hub is not merged: the workspace polls instead
        return note
    send_staff_event_on_commit(
        org_id=org_id,
        user_id=user.pk,
        type="crm.notification",
        data={"id": note.pk, "kind": kind, "title": title, "data": data},
    )
    return note


def _live_room_ids(org_id: int) -> list[int]:
    from livecommerce.models import Room

    return list(Room.objects.for_org(org_id).filter(status="live").values_list("id", flat=True))


def lead_context(*, contact: Contact, room_ids: list[int] | None = None) -> dict:
    """What the lead did (in these rooms): products clicked, coupons claimed, questions."""
    events = Event.objects.for_org(contact.org_id).filter(
        contact_id=contact.pk, type__in=["product.click", "coupon.claim", "chat"]
    )
    if room_ids:
        events = events.filter(room_id__in=room_ids)
    context = {"products_clicked": [], "coupons_claimed": [], "questions": []}
    for event in events.order_by("-occurred_at")[:60]:
        props = event.props or {}
        if event.type == "product.click":
            context["products_clicked"].append(props.get("name") or props.get("product"))
        elif event.type == "coupon.claim":
            context["coupons_claimed"].append(props.get("name") or props.get("coupon"))
        elif props.get("text"):
            context["questions"].append(str(props["text"])[:200])
    return {k: [x for x in v if x is not None][:10] for k, v in context.items()}


def top_grade(org_id: int) -> str:
    from crm.services.scoring import model_and_rules, thresholds

    # The memoised model: this runs on every grade change (the per-event path).
    ranked = thresholds(model_and_rules(org_id)[0])
    return ranked[0][1] if ranked else ""


def hot_lead_route(*, contact: Contact, old_grade: str, new_grade: str) -> Task | None:
    """A lead reaching the top grade while one of the org's rooms is live: assigned at once
    (if unowned: round robin within the team of its room or segment, crm.services.teams), a hot-lead task with the SLA and the context, owner notified.
    The task sends the lead back to the pool if it lapses (lead_sla_sweep)."""
    if not new_grade or new_grade != top_grade(contact.org_id) or old_grade == new_grade:
        return None
    live = _live_room_ids(contact.org_id)
    if not live:
        return None
    settings = crm_settings_for(contact.org_id)
    with transaction.atomic():
        contact = Contact.objects.for_org(contact.org_id).select_for_update().get(pk=contact.pk)
        if (
            Task.objects.for_org(contact.org_id)
            .filter(
                contact=contact,
                kind=TaskKind.HOT_LEAD,
                done_at__isnull=True,
                lapsed_at__isnull=True,
            )
            .exists()
        ):
            return None
        if contact.owner_id is None:
            from crm.services.teams import owner_for_lead

            # The team of the live room the lead is active in (or of its segment).
            rooms = set(
                Event.objects.for_org(contact.org_id)
                .filter(contact_id=contact.pk, room_id__in=live)
                .values_list("room_id", flat=True)
            )
            owner = owner_for_lead(contact=contact, room_ids=sorted(rooms))
            if owner is None:
                return None
            contact.owner = owner
            contact.save(update_fields=["owner", "updated_at"])
        context = lead_context(contact=contact, room_ids=live)
        context["room_ids"] = live
        task = Task.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            contact=contact,
            assignee_id=contact.owner_id,
            kind=TaskKind.HOT_LEAD,
            title=_("热线索：%(name)s 达到 %(grade)s 级")
            % {"name": contact.nickname or f"#{contact.pk}", "grade": new_grade},
            due_at=timezone.now() + timedelta(minutes=settings.hot_lead_sla_minutes),
            returns_to_pool=True,
            context=context,
        )
        notify(
            user=contact.owner,
            org_id=contact.org_id,
            kind="hot_lead",
            title=task.title,
            data={"contact": contact.pk, "task": task.pk, "grade": new_grade, **context},
        )
    return task


def lead_sla_sweep(now: datetime | None = None) -> int:
    """Lapsed pool-returning tasks: the lead goes back to the pool (公海) if its owner never
    touched it (status still new), and the owner is told. Returns how many leads returned."""
    now = now or timezone.now()
    returned = 0
    lapsed = Task.unscoped.filter(
        returns_to_pool=True, done_at__isnull=True, lapsed_at__isnull=True, due_at__lt=now
    ).select_related("contact", "assignee")
    for task in lapsed[:1000]:
        with transaction.atomic():
            Task.unscoped.filter(pk=task.pk).update(lapsed_at=now)
            contact = task.contact
            if contact.owner_id == task.assignee_id and contact.status == LeadStatus.NEW:
                Contact.unscoped.filter(pk=contact.pk).update(owner=None)
                returned += 1
                if task.assignee is not None:
                    notify(
                        user=task.assignee,
                        org_id=task.org_id,
                        kind="lead_returned",
                        title=_("线索超时未跟进，已退回公海"),
                        data={"contact": contact.pk, "task": task.pk},
                    )
    return returned
