"""One-ID APIs: merge two leads into one person, undo a merge."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.fields import IdField
from core.permissions import IsAdmin
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import Contact, ContactMerge
from crm.services.identity import contact_merge, contact_merge_undo


class MergeInput(InputSerializer):
    into = IdField()
    reason = serializers.CharField(max_length=200, required=False, default="")


class LeadMergeApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=MergeInput,
        responses={201: inline_serializer("CrmMergeOutput", {"merge": serializers.IntegerField()})},
    )
    def post(self, request, lead_id: int):
        org_id = org_id_of(request)
        serializer = MergeInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        absorbed = get_for_org_or_404(Contact, org_id, pk=lead_id)
        survivor = get_for_org_or_404(Contact, org_id, pk=serializer.validated_data["into"])
        merge = contact_merge(
            survivor=survivor,
            absorbed=absorbed,
            actor=request.user,
            reason=serializer.validated_data["reason"] or "manual",
        )
        return Response({"merge": merge.pk}, status=status.HTTP_201_CREATED)


class MergeUndoApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=None,
        responses=inline_serializer("CrmMergeUndoOutput", {"restored": serializers.IntegerField()}),
    )
    def post(self, request, merge_id: int):
        merge = get_for_org_or_404(ContactMerge, org_id_of(request), pk=merge_id)
        restored = contact_merge_undo(merge=merge, actor=request.user)
        return Response({"restored": restored.pk})
