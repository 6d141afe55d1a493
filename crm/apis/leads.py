"""Lead APIs: the lead pool (list, filters), one lead (detail, edit), notes, assignment."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import membership_of, org_id_of
from core.fields import IdField
from core.pagination import Pagination
from core.permissions import IsSalesOrAdmin
from core.ratelimit import client_ip
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import Contact, Gender, LeadStatus, Segment
from crm.selectors.leads import lead_detail, lead_list, lead_rows_masked, leads_by_ids
from crm.services import leads as lead_services


class LeadListOutput(serializers.Serializer):
    id = serializers.IntegerField()
    nickname = serializers.CharField()
    gender = serializers.CharField()
    age = serializers.IntegerField(allow_null=True)
    province = serializers.CharField()
    city = serializers.CharField()
    attributes = serializers.DictField(child=serializers.CharField())
    income_level = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    phone = serializers.CharField()
    owner = serializers.IntegerField(allow_null=True, source="owner_id")
    owner_name = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    source = serializers.CharField()
    score = serializers.IntegerField(allow_null=True)
    grade = serializers.CharField()
    lifecycle = serializers.CharField()
    rfm = serializers.CharField()
    last_seen_at = serializers.DateTimeField(allow_null=True)


class LeadFilterInput(serializers.Serializer):
    grade = serializers.CharField(required=False, max_length=4)
    owner = serializers.CharField(required=False, max_length=20)
    status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    segment = IdField(required=False)
    room = IdField(required=False)
    tag = serializers.CharField(required=False, max_length=20)
    identity = serializers.CharField(required=False, max_length=128)
    q = serializers.CharField(required=False, max_length=64)
    ordering = serializers.ChoiceField(
        choices=["-score", "score", "-last_seen_at", "-created_at", "created_at"],
        required=False,
    )

    def validate_owner(self, value: str):
        if value in ("me", "none"):
            return value
        if not value.isdigit():
            raise serializers.ValidationError(_("负责人应为用户ID、me 或 none"))
        return int(value)


def lead_filters(request) -> dict:
    serializer = LeadFilterInput(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    filters = dict(serializer.validated_data)
    org_id = org_id_of(request)
    if filters.get("owner") == "me":
        filters["owner"] = request.user.pk
    if "segment" in filters:
        filters["segment"] = get_for_org_or_404(Segment, org_id, pk=filters["segment"])
    return filters


class LeadListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(parameters=[LeadFilterInput], responses=LeadListOutput(many=True))
    def get(self, request):
        qs = lead_list(org_id=org_id_of(request), filters=lead_filters(request))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        rows = lead_rows_masked(page)
        return paginator.get_paginated_response(LeadListOutput(rows, many=True).data)


class LeadDetailOutput(LeadListOutput):
    score_breakdown = serializers.ListField(child=serializers.DictField())
    timeline = serializers.ListField(child=serializers.DictField())
    consents = serializers.DictField()
    scored_at = serializers.DateTimeField(allow_null=True)
    order_count = serializers.IntegerField()
    order_amount = serializers.FloatField()
    notes = serializers.ListField(child=serializers.DictField())
    tasks = serializers.ListField(child=serializers.DictField())
    phone_revealed = serializers.BooleanField()
    # Whether the caller may edit this lead's profile (the page shows the form only then).
    profile_editable = serializers.BooleanField()


class LeadPatchInput(InputSerializer):
    owner = IdField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=30
    )
    # Profile attributes (crm.services.leads.lead_profile_update): re-scored at once.
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    age = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=120)
    birth_year = serializers.IntegerField(
        required=False, allow_null=True, min_value=1900, max_value=2100
    )
    province = serializers.CharField(required=False, allow_blank=True, max_length=32)
    city = serializers.CharField(required=False, allow_blank=True, max_length=32)
    attributes = serializers.DictField(
        child=serializers.CharField(max_length=100, allow_null=True, allow_blank=True),
        required=False,
        help_text=_("自定义属性，合并写入；值为 null 删除该属性"),
    )

    def validate_attributes(self, value):
        if len(value) > 30 or any(not key or len(key) > 32 for key in value):
            raise serializers.ValidationError(_("自定义属性名为1-32个字符，最多30个"))
        return value

    def validate(self, attrs):
        if "age" in attrs and "birth_year" in attrs:
            raise serializers.ValidationError({"age": [_("年龄和出生年份只能填一个")]})
        if "age" in attrs:
            age = attrs.pop("age")
            # Ages are counted in the year of China time, as the scoring's "age" is.
            attrs["birth_year"] = None if age is None else timezone.localdate().year - age
        return attrs


def _detail(contact: Contact, request) -> dict:
    return lead_detail(contact=contact, membership=membership_of(request), ip=client_ip(request))


class LeadDetailApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    def _get(self, request, lead_id: int) -> Contact:
        return get_for_org_or_404(Contact, org_id_of(request), pk=lead_id, merged_into__isnull=True)

    @extend_schema(responses=LeadDetailOutput)
    def get(self, request, lead_id: int):
        contact = self._get(request, lead_id)
        return Response(LeadDetailOutput(_detail(contact, request)).data)

    @extend_schema(request=LeadPatchInput, responses=LeadDetailOutput)
    def patch(self, request, lead_id: int):
        contact = self._get(request, lead_id)
        serializer = LeadPatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lead_services.lead_edit(
            contact=contact,
            actor=request.user,
            membership=membership_of(request),
            owner_id=data.get("owner", lead_services.UNSET),
            status=data.get("status"),
            tags=data.get("tags"),
            profile={k: data[k] for k in lead_services.PROFILE_FIELDS if k in data},
        )
        return Response(LeadDetailOutput(_detail(contact, request)).data)


class NoteInput(InputSerializer):
    body = serializers.CharField(max_length=4000)


class LeadNoteApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        request=NoteInput,
        responses={201: inline_serializer("CrmNoteOutput", {"id": serializers.IntegerField()})},
    )
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, org_id_of(request), pk=lead_id)
        serializer = NoteInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = lead_services.note_add(
            contact=contact, author=request.user, body=serializer.validated_data["body"]
        )
        return Response({"id": note.pk}, status=status.HTTP_201_CREATED)


class AssignInput(InputSerializer):
    leads = serializers.ListField(child=IdField(), min_length=1, max_length=500)
    mode = serializers.ChoiceField(choices=["manual", "round_robin"], default="manual")
    owner = IdField(required=False, allow_null=True)

    def validate(self, attrs):
        if attrs["mode"] == "manual" and "owner" not in attrs:
            raise serializers.ValidationError({"owner": [_("手动分配需要负责人")]})
        return attrs


class LeadAssignApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        request=AssignInput,
        responses=inline_serializer("CrmAssignOutput", {"assigned": serializers.IntegerField()}),
    )
    def post(self, request):
        serializer = AssignInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        org_id = org_id_of(request)
        assigned = lead_services.leads_assign(
            org_id=org_id,
            contacts=leads_by_ids(org_id=org_id, ids=data["leads"]),
            mode=data["mode"],
            actor=request.user,
            owner_id=data.get("owner"),
        )
        return Response({"assigned": assigned})
