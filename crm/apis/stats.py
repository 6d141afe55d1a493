"""Lead statistics: the score distribution and the lifecycle funnel."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.permissions import IsSalesOrAdmin
from core.serializers import InputSerializer
from crm.selectors.stats import FUNNEL_BY, lead_funnel, score_distribution


class LeadStatsApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        responses=inline_serializer("CrmLeadStats", {"histogram": serializers.ListField()})
    )
    def get(self, request):
        return Response(score_distribution(org_id_of(request)))


class FunnelInput(InputSerializer):
    by = serializers.ChoiceField(choices=FUNNEL_BY, default="week")
    limit = serializers.IntegerField(min_value=1, max_value=52, default=12)


class FunnelRow(serializers.Serializer):
    cohort = serializers.CharField(help_text="week start (YYYY-MM-DD, Asia/Shanghai) or room id")
    title = serializers.CharField(allow_null=True, help_text="the room's title (by=room)")
    viewers = serializers.IntegerField()
    engaged = serializers.IntegerField()
    hot = serializers.IntegerField()
    customers = serializers.IntegerField()
    engaged_rate = serializers.FloatField(allow_null=True)
    hot_rate = serializers.FloatField(allow_null=True)
    customer_rate = serializers.FloatField(allow_null=True)
    overall_rate = serializers.FloatField(allow_null=True)


class FunnelOutput(serializers.Serializer):
    by = serializers.CharField()
    hot_grade = serializers.CharField()
    rows = FunnelRow(many=True)


class LeadFunnelApi(APIView):
    """Viewer → engaged → hot → customer per week or per room (definitions: docs/crm.md)."""

    permission_classes = [IsSalesOrAdmin]

    @extend_schema(parameters=[FunnelInput], responses=FunnelOutput)
    def get(self, request):
        params = FunnelInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(lead_funnel(org_id=org_id_of(request), **params.validated_data))
