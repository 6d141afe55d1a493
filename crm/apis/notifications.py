"""A staff member's in-app notifications."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.permissions import IsSalesOrAdmin
from core.tenancy import get_for_org_or_404
from crm.models import Notification


class NotificationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    data = serializers.DictField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=NotificationOutput(many=True))
    def get(self, request):
        qs = Notification.objects.for_org(org_id_of(request)).filter(user=request.user)[:50]
        return Response(NotificationOutput(qs, many=True).data)


class NotificationReadApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=None, responses=NotificationOutput)
    def post(self, request, notification_id: int):
        note = get_for_org_or_404(
            Notification, org_id_of(request), pk=notification_id, user=request.user
        )
        if note.read_at is None:
            note.read_at = timezone.now()
            note.save(update_fields=["read_at", "updated_at"])
        return Response(NotificationOutput(note).data)
