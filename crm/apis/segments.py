"""Segment APIs: the builder's fields, saved segments and previews of a condition."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.permissions import IsSalesOrAdmin
from core.serializers import InputSerializer, ModelInputSerializer
from core.tenancy import get_for_org_or_404
from crm.apis.leads import LeadListOutput
from crm.conditions import validate_condition
from crm.models import Segment
from crm.selectors.leads import condition_preview, segment_preview
from crm.selectors.segments import segment_fields, segment_list
from crm.services.segments import segment_create, segment_delete, segment_update


class SegmentSerializer(ModelInputSerializer):
    class Meta:
        model = Segment
        fields = ["id", "name", "condition", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_condition(self, value):
        validate_condition(value)
        return value


class SegmentFieldsApi(APIView):
    """The segment builder's pickers: each condition field's kind, operators and allowed
    values with labels in the request's language (crm.conditions.FIELDS is the source)."""

    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(segment_fields())


class SegmentListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=SegmentSerializer(many=True))
    def get(self, request):
        return Response(SegmentSerializer(segment_list(org_id_of(request)), many=True).data)

    @extend_schema(request=SegmentSerializer, responses={201: SegmentSerializer})
    def post(self, request):
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = segment_create(
            org_id=org_id_of(request), created_by=request.user, **serializer.validated_data
        )
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=SegmentSerializer)
    def get(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, org_id_of(request), pk=segment_id)
        return Response(SegmentSerializer(segment).data)

    @extend_schema(request=SegmentSerializer, responses=SegmentSerializer)
    def patch(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, org_id_of(request), pk=segment_id)
        serializer = SegmentSerializer(segment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        segment = segment_update(segment=segment, changes=serializer.validated_data)
        return Response(SegmentSerializer(segment).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, segment_id: int):
        segment_delete(segment=get_for_org_or_404(Segment, org_id_of(request), pk=segment_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField()
    sample = LeadListOutput(many=True)


class SegmentPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=PreviewOutput)
    def get(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, org_id_of(request), pk=segment_id)
        return Response(PreviewOutput(segment_preview(segment)).data)


class ConditionPreviewInput(InputSerializer):
    condition = serializers.JSONField()


class ConditionPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=ConditionPreviewInput, responses=PreviewOutput)
    def post(self, request):
        serializer = ConditionPreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = condition_preview(
            org_id=org_id_of(request), condition=serializer.validated_data["condition"]
        )
        return Response(PreviewOutput(preview).data)
