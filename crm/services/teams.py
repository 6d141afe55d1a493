"""Sales teams and round-robin assignment within a team.

An assignment picks a team (the first ``AssignmentRule`` by priority whose room the lead is
in or whose segment holds the lead; else the organisation's default team), then the next
member in turn. The turn is ONE atomic ``UPDATE … SET cursor = cursor + 1 RETURNING cursor``:
two concurrent assignments always get different cursor values, so the same slot is never
handed out twice in a row, with no lock held beyond that statement. An organisation without
teams keeps the org-wide round robin over its sales members.

Follow-up rules per team: an optional hot-lead SLA (null = the organisation's) and what a
lapse does (``pool``: back to 公海; ``next_member``: the next member in turn, never one who
already let this lead lapse). The lead's team for these rules is decided when its hot-lead
task is created (``team_for_owner``) and kept in the task's context.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.errors import DomainError, NotFound
from core.models import Membership, Role
from crm import rooms
from crm.conditions import contact_matches
from crm.models import (
    HOT_LEAD_SLA_MAX_MINUTES,
    AssignmentRule,
    Contact,
    CrmSettings,
    LapseAction,
    SalesTeam,
    Segment,
)

KEEP = object()  # "not given": an update keeps the team's current value


class InvalidTeam(DomainError):
    code = "invalid_team"


def _sla_in_range(minutes) -> bool:
    return (
        isinstance(minutes, int)
        and not isinstance(minutes, bool)
        and 1 <= minutes <= HOT_LEAD_SLA_MAX_MINUTES
    )


def _clean_follow_up_rules(hot_lead_sla_minutes, lapse_action) -> dict:
    """Field-level checks of a team's follow-up rules (the API and the admin share them)."""
    errors: dict[str, list[str]] = {}
    minutes = hot_lead_sla_minutes
    if minutes is not KEEP and minutes is not None and not _sla_in_range(minutes):
        errors["hot_lead_sla_minutes"] = [
            _("跟进时限须为 1 到 %(max)s 分钟，留空则用组织默认")
            % {"max": HOT_LEAD_SLA_MAX_MINUTES}
        ]
    if lapse_action is not KEEP and lapse_action not in LapseAction.values:
        errors["lapse_action"] = [_("未知的超时处理方式")]
    return errors


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
    hot_lead_sla_minutes: int | None | object = KEEP,
    lapse_action: str | object = KEEP,
) -> SalesTeam:
    """Create or update a team. Members must be active sales/admin members of the org; one
    default team per org (making this one default unsets the previous one). Follow-up rules
    not given keep their value (a new team: the org's SLA, lapses back to the pool)."""
    members = list(team_candidates(org_id=org_id).filter(pk__in=member_ids))
    missing = sorted(set(member_ids) - {u.pk for u in members})
    if missing:
        raise InvalidTeam(
            _("成员必须是本组织的销售或管理员"), fields={"members": [str(pk) for pk in missing]}
        )
    name = name.strip()
    if not name:
        raise InvalidTeam(_("请填写团队名称"), fields={"name": [_("必填")]})
    errors = _clean_follow_up_rules(hot_lead_sla_minutes, lapse_action)
    if errors:
        raise InvalidTeam(_("团队跟进规则无效"), fields=errors)
    clash = SalesTeam.objects.for_org(org_id).filter(name=name)
    if team is not None:
        clash = clash.exclude(pk=team.pk)
    if clash.exists():
        raise InvalidTeam(_("团队名称已存在"), fields={"name": [_("已存在")]})
    rules = {}
    if hot_lead_sla_minutes is not KEEP:
        rules["hot_lead_sla_minutes"] = hot_lead_sla_minutes
    if lapse_action is not KEEP:
        rules["lapse_action"] = lapse_action
    with transaction.atomic():
        if is_default:
            others = SalesTeam.objects.for_org(org_id).filter(is_default=True)
            if team is not None:
                others = others.exclude(pk=team.pk)
            others.update(is_default=False)
        if team is None:
            team = SalesTeam.objects.for_org(org_id).create(
                org_id=org_id, name=name, is_default=is_default, **rules
            )
        else:
            team.name, team.is_default = name, is_default
            for field, value in rules.items():
                setattr(team, field, value)
            team.save(update_fields=["name", "is_default", *rules, "updated_at"])
        team.members.set(members)
    return team


def _check_rule_target(*, org_id: int, room_id, segment) -> None:
    if room_id is None and segment is None:
        raise InvalidTeam(
            _("分配规则需要直播间或人群"), fields={"room": [_("直播间或人群必填其一")]}
        )
    # Another organisation's room is as unknown as a room that does not exist.
    if room_id is not None and not rooms.room_exists.get()(org_id, room_id):
        raise NotFound(_("直播间不存在"), fields={"room": [_("直播间不存在")]})
    if segment is not None and segment.org_id != org_id:
        raise NotFound(_("人群不存在"), fields={"segment": [_("人群不存在")]})


def assignment_rule_create(
    *,
    org_id: int,
    team: SalesTeam,
    priority: int = 100,
    room_id: int | None = None,
    segment: Segment | None = None,
) -> AssignmentRule:
    _check_rule_target(org_id=org_id, room_id=room_id, segment=segment)
    return AssignmentRule.objects.for_org(org_id).create(
        org_id=org_id, team=team, priority=priority, room_id=room_id, segment=segment
    )


def assignment_rule_update(
    *,
    rule: AssignmentRule,
    team: SalesTeam,
    priority: int,
    room_id: int | None = None,
    segment: Segment | None = None,
) -> AssignmentRule:
    """Point a rule at another team, room or segment, or move it in the order."""
    _check_rule_target(org_id=rule.org_id, room_id=room_id, segment=segment)
    if team.org_id != rule.org_id:
        raise NotFound(_("团队不存在"), fields={"team": [_("团队不存在")]})
    rule.team, rule.priority, rule.room_id, rule.segment = team, priority, room_id, segment
    rule.save(update_fields=["team", "priority", "room_id", "segment", "updated_at"])
    return rule


def team_delete(*, team: SalesTeam) -> None:
    team.delete()


def assignment_rule_delete(*, rule: AssignmentRule) -> None:
    rule.delete()


def team_next_member(*, team: SalesTeam, exclude_user_ids=()):
    """The next member in turn (None for a team without active members, or when every
    active member is excluded). Excluded members are skipped without costing a turn: the
    turn indexes the remaining members, so the result is never an excluded member even when
    concurrent assignments move the cursor in between."""
    members = [
        user
        for user in team.members.filter(
            is_active=True,
            pk__in=Membership.objects.filter(
                org_id=team.org_id, role__in=[Role.SALES, Role.ADMIN]
            ).values("user_id"),
        ).order_by("id")
        if user.pk not in exclude_user_ids
    ]
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

    rules = AssignmentRule.objects.for_org(contact.org_id).select_related("team", "segment")
    for rule in rules:
        if rule.room_id is not None and rule.room_id in room_ids:
            return rule.team
        if rule.segment_id is not None and contact_matches(contact, rule.segment.condition):
            return rule.team
    return SalesTeam.objects.for_org(contact.org_id).filter(is_default=True).first()


def team_for_owner(
    *, contact: Contact, owner_id: int, room_ids: list[int] | tuple = ()
) -> SalesTeam | None:
    """The team whose follow-up rules apply to this owner working this lead: the lead's own
    team (rules, default) if the owner is in it, else the owner's first team (lowest id),
    else None (the organisation's rules)."""
    team = team_for_lead(contact=contact, room_ids=room_ids)
    if team is not None and team.members.filter(pk=owner_id).exists():
        return team
    return SalesTeam.objects.for_org(contact.org_id).filter(members=owner_id).order_by("id").first()


def team_hot_lead_sla_minutes(*, team: SalesTeam | None, org_default: int) -> int:
    """The team's override, else the organisation's SLA."""
    if team is not None and team.hot_lead_sla_minutes is not None:
        return team.hot_lead_sla_minutes
    return org_default


def crm_settings_for(org_id: int) -> CrmSettings:
    settings, _ = CrmSettings.objects.for_org(org_id).get_or_create(org_id=org_id)
    return settings


def org_next_member(*, org_id: int) -> object | None:
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


def owner_and_team_for_lead(*, contact: Contact, room_ids: list[int] | tuple = ()):
    """(owner, team) for an unowned lead: the next member of its team, or — with no team, or
    a team with no active member — the org-wide round robin (team None)."""

    team = team_for_lead(contact=contact, room_ids=room_ids)
    if team is not None:
        owner = team_next_member(team=team)
        if owner is not None:
            return owner, team
    return org_next_member(org_id=contact.org_id), None


def owner_for_lead(*, contact: Contact, room_ids: list[int] | tuple = ()):
    """Who gets an unowned lead: the next member of its team, or — with no team, or a team
    with no active member — the org-wide round robin."""
    return owner_and_team_for_lead(contact=contact, room_ids=room_ids)[0]
