"""Sales teams and round-robin assignment within a team.

An assignment picks a team (the first ``AssignmentRule`` by priority whose room the lead is
in or whose segment holds the lead; else the organisation's default team), then the next
member in turn. The turn is ONE atomic ``UPDATE … SET cursor = cursor + 1 RETURNING cursor``:
two concurrent assignments always get different cursor values, so the same slot is never
handed out twice in a row, with no lock held beyond that statement. An organisation without
teams keeps the org-wide round robin over its sales members.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.errors import DomainError
from core.models import Membership, Role
from crm.models import AssignmentRule, Contact, SalesTeam


class InvalidTeam(DomainError):
    code = "invalid_team"


def team_candidates(*, org_id: int):
    """Active sales and admin members: who may be in a team."""
    return (
        get_user_model()
        .objects.filter(
            membership__org_id=org_id,
            membership__role__in=[Role.SALES, Role.ADMIN],
            is_active=True,
        )
        .order_by("id")
    )


def team_save(
    *,
    org_id: int,
    name: str,
    member_ids: list[int],
    is_default: bool = False,
    team: SalesTeam | None = None,
) -> SalesTeam:
    """Create or update a team. Members must be active sales/admin members of the org; one
    default team per org (making this one default unsets the previous one)."""
    members = list(team_candidates(org_id=org_id).filter(pk__in=member_ids))
    missing = sorted(set(member_ids) - {u.pk for u in members})
    if missing:
        raise InvalidTeam(
            _("成员必须是本组织的销售或管理员"), fields={"members": [str(pk) for pk in missing]}
        )
    name = name.strip()
    if not name:
        raise InvalidTeam(_("请填写团队名称"), fields={"name": [_("必填")]})
    clash = SalesTeam.objects.for_org(org_id).filter(name=name)
    if team is not None:
        clash = clash.exclude(pk=team.pk)
    if clash.exists():
        raise InvalidTeam(_("团队名称已存在"), fields={"name": [_("已存在")]})
    with transaction.atomic():
        if is_default:
            others = SalesTeam.objects.for_org(org_id).filter(is_default=True)
            if team is not None:
                others = others.exclude(pk=team.pk)
            others.update(is_default=False)
        if team is None:
            team = SalesTeam.objects.for_org(org_id).create(
                org_id=org_id, name=name, is_default=is_default
            )
        else:
            team.name, team.is_default = name, is_default
            team.save(update_fields=["name", "is_default", "updated_at"])
        team.members.set(members)
    return team


def assignment_rule_create(
    *, org_id: int, team: SalesTeam, priority: int = 100, room_id=None, segment=None
) -> AssignmentRule:
    if room_id is None and segment is None:
        raise InvalidTeam(
            _("分配规则需要直播间或人群"), fields={"room": [_("直播间或人群必填其一")]}
        )
    return AssignmentRule.objects.for_org(org_id).create(
        org_id=org_id, team=team, priority=priority, room_id=room_id, segment=segment
    )


def team_next_member(*, team: SalesTeam):
    """The next member in turn (None for a team without active members)."""
    members = list(
        team.members.filter(
            is_active=True,
            pk__in=Membership.objects.filter(
                org_id=team.org_id, role__in=[Role.SALES, Role.ADMIN]
            ).values("user_id"),
        ).order_by("id")
    )
    if not members:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SalesTeam._meta.db_table} SET cursor = cursor + 1 "  # noqa: S608
            "WHERE id = %s AND org_id = %s RETURNING cursor",
            [team.pk, team.org_id],
        )
        (turn,) = cursor.fetchone()
    return members[(turn - 1) % len(members)]


def team_for_lead(*, contact: Contact, room_ids: list[int] | tuple = ()) -> SalesTeam | None:
    """The first matching rule's team (room, then segment membership), else the default."""
    from crm.conditions import contact_matches

    rules = AssignmentRule.objects.for_org(contact.org_id).select_related("team", "segment")
    for rule in rules:
        if rule.room_id is not None and rule.room_id in room_ids:
            return rule.team
        if rule.segment_id is not None and contact_matches(contact, rule.segment.condition):
            return rule.team
    return SalesTeam.objects.for_org(contact.org_id).filter(is_default=True).first()


def owner_for_lead(*, contact: Contact, room_ids: list[int] | tuple = ()):
    """Who gets an unowned lead: the next member of its team, or — with no team, or a team
    with no active member — the org-wide round robin."""
    from crm.services.leads import assign_round_robin

    team = team_for_lead(contact=contact, room_ids=room_ids)
    if team is not None:
        owner = team_next_member(team=team)
        if owner is not None:
            return owner
    return assign_round_robin(org_id=contact.org_id)
