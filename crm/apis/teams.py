"""Sales teams (members, follow-up rules) and the assignment rules that pick a team."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.fields import IdField
from core.permissions import IsAdmin, IsSalesOrAdmin, PerMethodPermissionsMixin
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import HOT_LEAD_SLA_MAX_MINUTES, AssignmentRule, LapseAction, SalesTeam, Segment
from crm.selectors.teams import assignment_rule_list, team_list, team_members
from crm.services.teams import (
    assignment_rule_create,
    assignment_rule_delete,
    assignment_rule_update,
    team_candidates,
    team_delete,
    team_save,
)


class TeamInput(InputSerializer):
    name = serializers.CharField(max_length=64)
    members = serializers.ListField(child=IdField(), max_length=500)
    is_default = serializers.BooleanField(required=False, default=False)
    # Follow-up rules. Left out of a PUT they keep their value; null SLA = the org's.
    hot_lead_sla_minutes = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=HOT_LEAD_SLA_MAX_MINUTES
    )
    lapse_action = serializers.ChoiceField(choices=LapseAction.choices, required=False)


class TeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    is_default = serializers.BooleanField()
    members = serializers.ListField(child=serializers.DictField())
    hot_lead_sla_minutes = serializers.IntegerField(allow_null=True)
    lapse_action = serializers.CharField()


def _team_body(team) -> dict:
    members = team_members(team)
    return TeamOutput(
        {
            "id": team.pk,
            "name": team.name,
            "is_default": team.is_default,
            "members": members,
            "hot_lead_sla_minutes": team.hot_lead_sla_minutes,
            "lapse_action": team.lapse_action,
        }
    ).data


def _team_rules(values: dict) -> dict:
    """The follow-up rules the request gave (absent ones are kept by team_save)."""
    return {k: values[k] for k in ("hot_lead_sla_minutes", "lapse_action") if k in values}


class TeamListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"POST": [IsAdmin]}

    @extend_schema(responses=TeamOutput(many=True))
    def get(self, request):
        teams = team_list(org_id_of(request))
        return Response([_team_body(t) for t in teams])

    @extend_schema(request=TeamInput, responses={201: TeamOutput})
    def post(self, request):
        data = TeamInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = team_save(
            org_id=org_id_of(request),
            name=data.validated_data["name"],
            member_ids=data.validated_data["members"],
            is_default=data.validated_data["is_default"],
            **_team_rules(data.validated_data),
        )
        return Response(_team_body(team), status=status.HTTP_201_CREATED)


class TeamDetailApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"PUT": [IsAdmin], "DELETE": [IsAdmin]}

    @extend_schema(responses=TeamOutput)
    def get(self, request, team_id: int):
        return Response(_team_body(get_for_org_or_404(SalesTeam, org_id_of(request), pk=team_id)))

    @extend_schema(request=TeamInput, responses=TeamOutput)
    def put(self, request, team_id: int):
        team = get_for_org_or_404(SalesTeam, org_id_of(request), pk=team_id)
        data = TeamInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = team_save(
            org_id=team.org_id,
            name=data.validated_data["name"],
            member_ids=data.validated_data["members"],
            is_default=data.validated_data["is_default"],
            team=team,
            **_team_rules(data.validated_data),
        )
        return Response(_team_body(team))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, team_id: int):
        team_delete(team=get_for_org_or_404(SalesTeam, org_id_of(request), pk=team_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TeamCandidatesApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        responses=inline_serializer(
            "CrmTeamCandidate",
            {"id": serializers.IntegerField(), "username": serializers.CharField()},
        )
    )
    def get(self, request):
        users = team_candidates(org_id=org_id_of(request))
        return Response([{"id": u.pk, "username": u.username} for u in users])


class AssignmentRuleSerializer(InputSerializer):
    id = serializers.IntegerField(read_only=True)
    team = IdField()
    priority = serializers.IntegerField(min_value=0, max_value=100_000, default=100)
    room = IdField(required=False, allow_null=True, source="room_id")
    segment = IdField(required=False, allow_null=True, source="segment_id")
    team_name = serializers.CharField(read_only=True)
    segment_name = serializers.CharField(read_only=True, allow_null=True)


def _rule_body(rule) -> dict:
    return {
        "id": rule.pk,
        "team": rule.team_id,
        "priority": rule.priority,
        "room": rule.room_id,
        "segment": rule.segment_id,
        "team_name": rule.team.name,
        "segment_name": rule.segment.name if rule.segment_id else None,
    }


def _rule_targets(request) -> tuple[int, dict, object, object]:
    """Validated rule input with its team and segment looked up in the caller's org (another
    organisation's id is a 404, like any lookup)."""
    data = AssignmentRuleSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    org_id = org_id_of(request)
    values = data.validated_data
    team = get_for_org_or_404(SalesTeam, org_id, pk=values["team"])
    segment = None
    if values.get("segment_id"):
        segment = get_for_org_or_404(Segment, org_id, pk=values["segment_id"])
    return org_id, values, team, segment


class AssignmentRuleListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"POST": [IsAdmin]}

    @extend_schema(responses=AssignmentRuleSerializer(many=True))
    def get(self, request):
        rules = assignment_rule_list(org_id_of(request))
        return Response([_rule_body(r) for r in rules])

    @extend_schema(request=AssignmentRuleSerializer, responses={201: AssignmentRuleSerializer})
    def post(self, request):
        org_id, values, team, segment = _rule_targets(request)
        rule = assignment_rule_create(
            org_id=org_id,
            team=team,
            priority=values["priority"],
            room_id=values.get("room_id"),
            segment=segment,
        )
        return Response(_rule_body(rule), status=status.HTTP_201_CREATED)


class AssignmentRuleDetailApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=AssignmentRuleSerializer, responses=AssignmentRuleSerializer)
    def put(self, request, rule_id: int):
        rule = get_for_org_or_404(AssignmentRule, org_id_of(request), pk=rule_id)
        _, values, team, segment = _rule_targets(request)
        rule = assignment_rule_update(
            rule=rule,
            team=team,
            priority=values["priority"],
            room_id=values.get("room_id"),
            segment=segment,
        )
        return Response(_rule_body(rule))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, rule_id: int):
        rule = get_for_org_or_404(AssignmentRule, org_id_of(request), pk=rule_id)
        assignment_rule_delete(rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)
