"""The sales workflow on a lead: owner, status, notes, tasks, round-robin assignment, the pool
(公海) sweep and hot-lead routing during a live broadcast."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError, Forbidden
from core.models import AuditLog, Membership, Role
from core.staff_events import send_staff_event_on_commit
from crm import rooms
from crm.models import (
    Contact,
    Event,
    LapseAction,
    LeadStatus,
    Note,
    Notification,
    SalesTeam,
    Task,
    TaskKind,
)
from crm.services.scoring import contact_rescore, model_and_rules, thresholds
from crm.services.teams import (
    crm_settings_for,
    owner_and_team_for_lead,
    team_for_owner,
    team_hot_lead_sla_minutes,
    team_next_member,
)

log = logging.getLogger(__name__)
UNSET = object()  # "owner not given" (None means: back to the pool)


class InvalidOwner(DomainError):
    code = "invalid_owner"


def _member_user(org_id: int, user_id: int):
    membership = (
        Membership.objects.select_related("user")
        .filter(org_id=org_id, user_id=user_id, user__is_active=True)
        .first()
    )
    if membership is None:
        raise InvalidOwner(_("负责人必须是本组织成员"), fields={"owner": [_("不是本组织成员")]})
    return membership.user


def lead_owner_audit(
    *,
    contact: Contact,
    old_owner_id: int | None,
    new_owner_id: int | None,
    reason: str,
    actor=None,
    detail: dict | None = None,
) -> AuditLog | None:
    """One ``lead.owner_change`` audit row per change of owner, whoever made it: a person
    (``actor``) or the system (hot-lead routing, the SLA sweep: no actor). ``reason`` is
    ``manual``, ``round_robin``, ``hot_lead``, ``sla_pool`` or ``sla_next_member``."""
    if old_owner_id == new_owner_id:
        return None
    return AuditLog.objects.for_org(contact.org_id).create(
        org_id=contact.org_id,
        actor=actor,
        action="lead.owner_change",
        target_type="contact",
        target_id=str(contact.pk),
        detail={"from": old_owner_id, "to": new_owner_id, "reason": reason, **(detail or {})},
    )


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
    old_owner_id = contact.owner_id
    old_status = contact.status
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
    if owner_id is not UNSET:
        lead_owner_audit(
            contact=contact,
            old_owner_id=old_owner_id,
            new_owner_id=contact.owner_id,
            reason="manual",
            actor=actor,
        )
    if status is not None and status != old_status:
        # The lead's timeline reads status changes from here (crm.selectors.lead_timeline).
        AuditLog.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            actor=actor,
            action="lead.status_change",
            target_type="contact",
            target_id=str(contact.pk),
            detail={"from": old_status, "to": status},
        )
    return contact


def lead_edit(
    *,
    contact: Contact,
    actor,
    membership: Membership,
    owner_id: int | None | object = UNSET,
    status: str | None = None,
    tags: list[str] | None = None,
    profile: dict | None = None,
) -> Contact:
    """One edit of a lead from its page, all or nothing: owner, status and tags
    (``lead_update``), then profile attributes (``lead_profile_update``, re-scored)."""
    with transaction.atomic():
        lead_update(contact=contact, actor=actor, owner_id=owner_id, status=status, tags=tags)
        if profile:
            lead_profile_update(contact=contact, membership=membership, changes=profile)
    return contact


def leads_assign(
    *, org_id: int, contacts: list[Contact], mode: str, actor, owner_id: int | None = None
) -> int:
    """Assign leads in one transaction: ``round_robin`` gives each unowned lead the next owner
    in turn; ``manual`` gives every lead ``owner_id`` (None: back to the pool). How many."""
    with transaction.atomic():
        if mode == "round_robin":
            return leads_assign_round_robin(org_id=org_id, contacts=contacts, actor=actor)
        for contact in contacts:
            lead_update(contact=contact, actor=actor, owner_id=owner_id)
        return len(contacts)


# What lead_profile_update may change; audited by name only (the values are personal data).
PROFILE_FIELDS = ("gender", "birth_year", "province", "city", "attributes")
MAX_ATTRIBUTES = 30


def lead_profile_editable(*, contact: Contact, membership: Membership) -> bool:
    """Admins edit any lead's profile; sales their own leads and those in the pool."""
    if membership.role == Role.ADMIN:
        return True
    return membership.role == Role.SALES and contact.owner_id in (None, membership.user_id)


def lead_profile_update(*, contact: Contact, membership: Membership, changes: dict) -> list[str]:
    """Set profile attributes of a lead (``changes`` keys from PROFILE_FIELDS; for
    ``attributes`` a dict merged into the custom attributes, a None value removing a key),
    audit the names of what changed, and re-score at once so the timeline shows the score
    change next to the edit. Returns the changed field names (nothing changed: no audit,
    no re-score). Raises Forbidden outside the role rules."""

    if not lead_profile_editable(contact=contact, membership=membership):
        raise Forbidden(_("只能修改自己负责或公海中线索的资料"))
    changed = []
    for name, value in changes.items():
        if name not in PROFILE_FIELDS:
            raise DomainError(_("不可修改的字段"), fields={name: [_("不可修改的字段")]})
        if name == "attributes":
            merged = {**(contact.attributes or {})}
            for key, item in value.items():
                if item is None:
                    merged.pop(key, None)
                else:
                    merged[key] = item
            if len(merged) > MAX_ATTRIBUTES:
                raise DomainError(_("自定义属性过多"), fields={"attributes": [_("自定义属性过多")]})
            value = merged
        if getattr(contact, name) != value:
            setattr(contact, name, value)
            changed.append(name)
    if not changed:
        return []
    with transaction.atomic():
        contact.save(update_fields=[*changed, "updated_at"])
        AuditLog.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            actor=membership.user,
            action="lead.profile_change",
            target_type="contact",
            target_id=str(contact.pk),
            detail={"fields": changed},
        )
        contact_rescore(contact=contact, reason="profile")
    return changed


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


def leads_assign_round_robin(*, org_id: int, contacts: list[Contact], actor=None) -> int:
    """Give each unowned lead the next owner in turn (within its team: crm.services.teams)."""

    assigned = 0
    for contact in contacts:
        if contact.owner_id is None:
            owner, team = owner_and_team_for_lead(contact=contact)
            if owner is None:
                break
            Contact.objects.for_org(org_id).filter(pk=contact.pk).update(owner=owner)
            contact.owner = owner
            lead_owner_audit(
                contact=contact,
                old_owner_id=None,
                new_owner_id=owner.pk,
                reason="round_robin",
                actor=actor,
                detail={"team": team.pk if team else None},
            )
            assigned += 1
    return assigned


def user_notify(*, user, org_id: int, kind: str, title: str, data: dict) -> Notification:
    """A notification row (the truth) and a real-time hint to the user's workspace."""
    note = Notification.objects.for_org(org_id).create(
        org_id=org_id, user=user, kind=kind, title=title, data=data
    )
    send_staff_event_on_commit(
        org_id=org_id,
        user_id=user.pk,
        type="crm.notification",
        data={"id": note.pk, "kind": kind, "title": title, "data": data},
    )
    return note


def notification_read(*, notification: Notification) -> Notification:
    """Mark a notification read (once: the first read time stays)."""
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def _live_room_ids(org_id: int) -> list[int]:
    return rooms.live_room_ids.get()(org_id)


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
    # The memoised model: this runs on every grade change (the per-event path).
    ranked = thresholds(model_and_rules(org_id)[0])
    return ranked[0][1] if ranked else ""


def hot_lead_route(*, contact: Contact, old_grade: str, new_grade: str) -> Task | None:
    """A lead reaching the top grade while one of the org's rooms is live: assigned at once
    (if unowned: round robin within the team of its room or segment, crm.services.teams), a
    hot-lead task with the SLA of the owner's team (else the org's) and the context, owner
    notified. The task's lapse is handled by lead_sla_sweep under the team's rule."""
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
        # The team of the live room the lead is active in (or of its segment).
        rooms = sorted(
            set(
                Event.objects.for_org(contact.org_id)
                .filter(contact_id=contact.pk, room_id__in=live)
                .values_list("room_id", flat=True)
            )
        )
        if contact.owner_id is None:
            owner, team = owner_and_team_for_lead(contact=contact, room_ids=rooms)
            if owner is None:
                return None
            contact.owner = owner
            contact.save(update_fields=["owner", "updated_at"])
            lead_owner_audit(
                contact=contact,
                old_owner_id=None,
                new_owner_id=owner.pk,
                reason="hot_lead",
                detail={"team": team.pk if team else None},
            )
        else:
            team = team_for_owner(contact=contact, owner_id=contact.owner_id, room_ids=rooms)
        context = lead_context(contact=contact, room_ids=live)
        context["room_ids"] = live
        if team is not None:
            context["team"] = team.pk
        task = _hot_lead_task(
            contact=contact, grade=new_grade, team=team, settings=settings, context=context
        )
        user_notify(
            user=contact.owner,
            org_id=contact.org_id,
            kind="hot_lead",
            title=task.title,
            data={"contact": contact.pk, "task": task.pk, "grade": new_grade, **context},
        )
    return task


def _hot_lead_task(
    *, contact: Contact, team, settings, context: dict, grade: str = "", title: str = ""
) -> Task:

    minutes = team_hot_lead_sla_minutes(team=team, org_default=settings.hot_lead_sla_minutes)
    return Task.objects.for_org(contact.org_id).create(
        org_id=contact.org_id,
        contact=contact,
        assignee_id=contact.owner_id,
        kind=TaskKind.HOT_LEAD,
        title=title
        or _("热线索：%(name)s 达到 %(grade)s 级")
        % {"name": contact.nickname or f"#{contact.pk}", "grade": grade},
        due_at=timezone.now() + timedelta(minutes=minutes),
        returns_to_pool=True,
        context=context,
    )


def _lapse_team(task: Task):
    """The team whose lapse rule governs a hot-lead task (None: the org's rule, the pool)."""

    team_id = (task.context or {}).get("team")
    if task.kind != TaskKind.HOT_LEAD or not isinstance(team_id, int):
        return None
    return SalesTeam.objects.for_org(task.org_id).filter(pk=team_id).first()


def lead_sla_sweep(now: datetime | None = None) -> int:
    """Lapsed pool-returning tasks whose lead is still ``new`` with the task's assignee as
    owner: under the team's ``next_member`` rule (hot-lead tasks of a team) the lead goes at
    once to the team's next member in turn who has not let it lapse yet, with a fresh
    hot-lead task and SLA; otherwise — or when nobody in the team is left — back to the pool
    (公海). Owners old and new are told; every change of owner is audited. Returns how many
    leads changed hands (returned or re-assigned)."""
    now = now or timezone.now()
    moved = 0
    lapsed = Task.unscoped.filter(
        returns_to_pool=True, done_at__isnull=True, lapsed_at__isnull=True, due_at__lt=now
    ).select_related("assignee")
    for task in lapsed[:1000]:
        with transaction.atomic():
            # Claim the lapse: a concurrent sweep (or a completion) that got there first wins.
            claimed = Task.unscoped.filter(
                pk=task.pk, done_at__isnull=True, lapsed_at__isnull=True
            ).update(lapsed_at=now)
            if not claimed:
                continue
            contact = (
                Contact.unscoped.select_for_update()
                .filter(pk=task.contact_id, org_id=task.org_id)
                .first()
            )
            if (
                contact is None
                or contact.owner_id is None
                or contact.owner_id != task.assignee_id
                or contact.status != LeadStatus.NEW
            ):
                continue
            if _lapse_to_next_member(task=task, contact=contact):
                moved += 1
                continue
            Contact.unscoped.filter(pk=contact.pk).update(owner=None)
            lead_owner_audit(
                contact=contact,
                old_owner_id=task.assignee_id,
                new_owner_id=None,
                reason="sla_pool",
                detail={"task": task.pk},
            )
            moved += 1
            if task.assignee is not None:
                user_notify(
                    user=task.assignee,
                    org_id=task.org_id,
                    kind="lead_returned",
                    title=_("线索超时未跟进，已退回公海"),
                    data={"contact": contact.pk, "task": task.pk},
                )
    return moved


def _lapse_to_next_member(*, task: Task, contact: Contact) -> bool:
    """The ``next_member`` rule (inside the sweep's transaction): hand the lead to the team's
    next member in turn, skipping everyone who already let it lapse. False when the rule does
    not apply or nobody is left (the caller returns the lead to the pool)."""

    team = _lapse_team(task)
    if team is None or team.lapse_action != LapseAction.NEXT_MEMBER:
        return False
    earlier = (task.context or {}).get("lapsed_by", [])
    lapsed_by = [pk for pk in earlier if isinstance(pk, int)] + [task.assignee_id]
    owner = team_next_member(team=team, exclude_user_ids=set(lapsed_by))
    if owner is None:
        return False
    old = task.assignee
    Contact.unscoped.filter(pk=contact.pk).update(owner=owner, updated_at=timezone.now())
    contact.owner = owner
    context = {**(task.context or {}), "team": team.pk, "lapsed_by": lapsed_by}
    context["reassigned_from"] = old.pk
    new_task = _hot_lead_task(
        contact=contact,
        title=task.title,
        team=team,
        settings=crm_settings_for(contact.org_id),
        context=context,
    )
    lead_owner_audit(
        contact=contact,
        old_owner_id=old.pk,
        new_owner_id=owner.pk,
        reason="sla_next_member",
        detail={"task": task.pk, "new_task": new_task.pk, "team": team.pk},
    )
    user_notify(
        user=old,
        org_id=contact.org_id,
        kind="lead_reassigned",
        title=_("线索超时未跟进，已转给 %(name)s") % {"name": owner.username},
        data={"contact": contact.pk, "task": task.pk, "to": owner.pk},
    )
    user_notify(
        user=owner,
        org_id=contact.org_id,
        kind="hot_lead",
        title=new_task.title,
        data={
            "contact": contact.pk,
            "task": new_task.pk,
            "grade": contact.grade,
            "reassigned_from": old.pk,
            **{k: v for k, v in context.items() if k not in ("lapsed_by", "reassigned_from")},
        },
    )
    return True
