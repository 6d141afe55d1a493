"""A staff member's in-app notifications."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.permissions import IsSalesOrAdmin
from core.tenancy import get_for_org_or_404
from crm.models import Notification
from crm.selectors.notifications import notification_list
from crm.services.leads import notification_read


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
        notes = notification_list(org_id=org_id_of(request), user=request.user)
        return Response(NotificationOutput(notes, many=True).data)


class NotificationReadApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=None, responses=NotificationOutput)
    def post(self, request, notification_id: int):
        note = get_for_org_or_404(
            Notification, org_id_of(request), pk=notification_id, user=request.user
        )
        note = notification_read(notification=note)
        return Response(NotificationOutput(note).data)
