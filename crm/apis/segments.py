"""Segment APIs: the builder's fields, saved segments and previews of a condition."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import pii
from core.auth import org_id_of
from core.permissions import IsSalesOrAdmin
from core.serializers import InputSerializer, ModelInputSerializer
from core.tenancy import get_for_org_or_404
from crm.apis.leads import LeadListOutput, lead_row
from crm.conditions import FIELDS, OPS_BY_KIND, contacts_matching, validate_condition
from crm.models import Contact, Segment
from crm.selectors import segment_contacts
from crm.services import privacy


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
        labels = {
            name: dict(Contact._meta.get_field(name).choices or ())
            for name in ("gender", "income_level", "status", "source", "lifecycle")
        }
        fields = []
        for name, spec in FIELDS.items():
            if spec.kind == "bool":
                choices = [
                    {"value": True, "label": str(_("已授权"))},
                    {"value": False, "label": str(_("未授权"))},
                ]
            elif name in labels:
                choices = [{"value": v, "label": str(labels[name].get(v, v))} for v in spec.choices]
            elif name == "grade":
                choices = [{"value": g, "label": g} for g in ("A", "B", "C")]
            else:
                choices = []
            fields.append(
                {
                    "field": name,
                    "kind": spec.kind,
                    "ops": sorted(OPS_BY_KIND[spec.kind] - {"exists"}),
                    "choices": choices,
                }
            )
        return Response({"fields": fields})


class SegmentListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=SegmentSerializer(many=True))
    def get(self, request):
        segments = Segment.objects.for_org(org_id_of(request)).order_by("-id")
        return Response(SegmentSerializer(segments, many=True).data)

    @extend_schema(request=SegmentSerializer, responses={201: SegmentSerializer})
    def post(self, request):
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = serializer.save(org_id=org_id_of(request), created_by=request.user)
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
        serializer.save()
        return Response(serializer.data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, segment_id: int):
        get_for_org_or_404(Segment, org_id_of(request), pk=segment_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField()
    sample = LeadListOutput(many=True)


def _preview(qs) -> dict:
    sample = list(qs.select_related("owner").order_by("-score", "-id")[:10])
    phones = privacy.phones_of(c.pk for c in sample)
    return {
        "count": qs.count(),
        "sample": [
            lead_row(c, pii.mask_phone(phones[c.pk]) if c.pk in phones else "") for c in sample
        ],
    }


class SegmentPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=PreviewOutput)
    def get(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, org_id_of(request), pk=segment_id)
        return Response(PreviewOutput(_preview(segment_contacts(segment))).data)


class ConditionPreviewInput(InputSerializer):
    condition = serializers.JSONField()


class ConditionPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=ConditionPreviewInput, responses=PreviewOutput)
    def post(self, request):
        serializer = ConditionPreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        qs = contacts_matching(org_id_of(request), serializer.validated_data["condition"])
        return Response(PreviewOutput(_preview(qs)).data)
