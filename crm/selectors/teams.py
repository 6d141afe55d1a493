"""Reads of sales teams and assignment rules."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import AssignmentRule, SalesTeam


def team_list(org_id: int) -> QuerySet:
    return SalesTeam.objects.for_org(org_id).prefetch_related("members").order_by("id")


def team_members(team: SalesTeam) -> list[dict]:
    return [{"id": u.pk, "username": u.username} for u in team.members.order_by("id")]


def assignment_rule_list(org_id: int) -> QuerySet:
    return AssignmentRule.objects.for_org(org_id).select_related("team", "segment")
