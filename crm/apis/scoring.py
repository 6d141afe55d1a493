"""Scoring rule APIs: the rules, their live preview, and re-scoring an organisation."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.permissions import IsAdmin, IsSalesOrAdmin, PerMethodPermissionsMixin
from core.serializers import InputSerializer, ModelInputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import ScoringRule
from crm.selectors.scoring import scoring_rule_list, scoring_rule_preview
from crm.services.rescore_jobs import org_rescore_request, rescore_progress
from crm.services.scoring import (
    scoring_rule_create,
    scoring_rule_delete,
    scoring_rule_update,
    scoring_rule_validate,
)


class ScoringRuleSerializer(ModelInputSerializer):
    class Meta:
        model = ScoringRule
        fields = ["id", "name", "points", "condition", "max_points", "half_life_days", "is_active"]
        read_only_fields = ["id"]

    def validate(self, attrs):
        merged = {
            "condition": getattr(self.instance, "condition", None),
            "max_points": getattr(self.instance, "max_points", None),
            "half_life_days": getattr(self.instance, "half_life_days", None),
        }
        merged.update({k: v for k, v in attrs.items() if k in merged})
        scoring_rule_validate(**merged)
        return attrs


class ScoringRuleListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"POST": [IsAdmin]}

    @extend_schema(responses=ScoringRuleSerializer(many=True))
    def get(self, request):
        rules = scoring_rule_list(org_id_of(request))
        return Response(ScoringRuleSerializer(rules, many=True).data)

    @extend_schema(request=ScoringRuleSerializer, responses={201: ScoringRuleSerializer})
    def post(self, request):
        serializer = ScoringRuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = scoring_rule_create(org_id=org_id_of(request), **serializer.validated_data)
        return Response(ScoringRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class ScoringRuleDetailApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"PATCH": [IsAdmin], "DELETE": [IsAdmin]}

    @extend_schema(responses=ScoringRuleSerializer)
    def get(self, request, rule_id: int):
        rule = get_for_org_or_404(ScoringRule, org_id_of(request), pk=rule_id)
        return Response(ScoringRuleSerializer(rule).data)

    @extend_schema(request=ScoringRuleSerializer, responses=ScoringRuleSerializer)
    def patch(self, request, rule_id: int):
        rule = get_for_org_or_404(ScoringRule, org_id_of(request), pk=rule_id)
        serializer = ScoringRuleSerializer(rule, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = scoring_rule_update(rule=rule, changes=serializer.validated_data)
        return Response(ScoringRuleSerializer(rule).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, rule_id: int):
        scoring_rule_delete(rule=get_for_org_or_404(ScoringRule, org_id_of(request), pk=rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScoringRulePreviewApi(APIView):
    """How many leads an edited rule would match and move between grades (the rule editor's
    live preview); nothing is saved."""

    permission_classes = [IsAdmin]

    class RulePreviewInput(InputSerializer):
        condition = serializers.JSONField()
        points = serializers.IntegerField(min_value=-1000, max_value=1000)
        is_active = serializers.BooleanField(required=False, default=True)

        def validate(self, attrs):
            scoring_rule_validate(condition=attrs["condition"])
            return attrs

    class RulePreviewOutput(serializers.Serializer):
        matching = serializers.IntegerField()
        moved = serializers.IntegerField()
        moved_up = serializers.IntegerField()
        moved_down = serializers.IntegerField()

    @extend_schema(request=RulePreviewInput, responses=RulePreviewOutput)
    def post(self, request, rule_id: int):
        rule = get_for_org_or_404(ScoringRule, org_id_of(request), pk=rule_id)
        data = self.RulePreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return Response(
            scoring_rule_preview(
                rule=rule,
                condition=values["condition"],
                points=values["points"],
                is_active=values["is_active"],
            )
        )


class RescoreApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"POST": [IsAdmin]}

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "CrmRescoreOutput",
            {"state": serializers.CharField(), "changed": serializers.IntegerField(required=False)},
        ),
    )
    def post(self, request):
        result = org_rescore_request(org_id=org_id_of(request))
        queued = result["state"] == "queued"
        return Response(result, status=status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK)

    @extend_schema(
        responses=inline_serializer(
            "CrmRescoreProgress",
            {
                "state": serializers.CharField(),
                "done": serializers.IntegerField(),
                "total": serializers.IntegerField(),
            },
        )
    )
    def get(self, request):
        return Response(rescore_progress(org_id_of(request)))
