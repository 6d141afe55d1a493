"""Follow-up task APIs (a lead's to-dos; not Celery tasks, which live in crm/tasks.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import org_id_of
from core.fields import IdField
from core.pagination import Pagination
from core.permissions import IsSalesOrAdmin
from core.serializers import InputSerializer
from core.tenancy import get_for_org_or_404
from crm.models import Contact, Task
from crm.selectors.tasks import task_list, task_row
from crm.services import leads as lead_services


class TaskInput(InputSerializer):
    title = serializers.CharField(max_length=200)
    due_at = serializers.DateTimeField()
    assignee = IdField(required=False, allow_null=True)
    returns_to_pool = serializers.BooleanField(default=False)


class TaskOutput(serializers.Serializer):
    id = serializers.IntegerField()
    contact = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    assignee = serializers.IntegerField(allow_null=True)
    assignee_name = serializers.CharField(allow_null=True)
    due_at = serializers.DateTimeField()
    done_at = serializers.DateTimeField(allow_null=True)
    lapsed_at = serializers.DateTimeField(allow_null=True)
    context = serializers.DictField()


class LeadTaskApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=TaskInput, responses={201: TaskOutput})
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, org_id_of(request), pk=lead_id)
        serializer = TaskInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = lead_services.task_create(
            contact=contact,
            assignee_id=data.get("assignee") or contact.owner_id or request.user.pk,
            title=data["title"],
            due_at=data["due_at"],
            returns_to_pool=data["returns_to_pool"],
        )
        return Response(TaskOutput(task_row(task)).data, status=status.HTTP_201_CREATED)


class TaskListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("open", bool, description="only tasks not done")],
        responses=TaskOutput(many=True),
    )
    def get(self, request):
        qs = task_list(
            org_id=org_id_of(request),
            user=request.user,
            open_only=request.query_params.get("open", "1") not in ("0", "false"),
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(
            TaskOutput([task_row(t) for t in page], many=True).data
        )


class TaskCompleteApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=None, responses=TaskOutput)
    def post(self, request, task_id: int):
        task = get_for_org_or_404(Task, org_id_of(request), pk=task_id)
        lead_services.task_complete(task=task)
        return Response(TaskOutput(task_row(task)).data)
