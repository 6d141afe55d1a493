"""CRM API: leads, workflow, consent, privacy, scoring rules, segments, external events."""

from __future__ import annotations

from django.db import transaction
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core import pii
from core.auth import membership_of
from core.errors import DomainError
from core.fields import IdField
from core.pagination import Pagination
from core.permissions import IsAdmin, IsSalesOrAdmin, PerMethodPermissionsMixin
from core.ratelimit import client_ip
from core.serializers import InputSerializer, ModelInputSerializer
from core.tenancy import get_for_org_or_404
from crm.conditions import ConditionError, contacts_matching, validate_condition
from crm.models import (
    HOT_LEAD_SLA_MAX_MINUTES,
    ConsentPurpose,
    Contact,
    ContactMerge,
    Gender,
    LapseAction,
    LeadStatus,
    Notification,
    ScoringRule,
    Segment,
    Task,
)
from crm.selectors import (
    FUNNEL_BY,
    consent_states,
    lead_funnel,
    lead_list,
    lead_timeline,
    live_contacts,
    score_breakdown_named,
    score_distribution,
    segment_contacts,
)
from crm.services import consent as consent_services
from crm.services import leads as lead_services
from crm.services import privacy
from crm.services.identity import contact_merge, contact_merge_undo
from crm.services.rescore_jobs import progress_reporter, rescore_progress
from crm.services.scoring import org_rescore, scoring_model_for, validate_rule


def _org_id(request) -> int:
    return membership_of(request).org_id


def _age(contact: Contact) -> int | None:
    if contact.birth_year is None:
        return None
    return timezone.now().year - contact.birth_year


# --- leads ---------------------------------------------------------------------------------


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


def _lead_row(contact: Contact, phone: str) -> dict:
    return {
        "id": contact.pk,
        "nickname": contact.nickname,
        "gender": contact.gender,
        "age": _age(contact),
        "province": contact.province,
        "city": contact.city,
        "attributes": contact.attributes or {},
        "income_level": contact.income_level,
        "tags": contact.tags or [],
        "phone": phone,
        "owner_id": contact.owner_id,
        "owner_name": contact.owner.username if contact.owner_id else None,
        "status": contact.status,
        "source": contact.source,
        "score": contact.score,
        "grade": contact.grade,
        "lifecycle": contact.lifecycle,
        "rfm": contact.rfm,
        "last_seen_at": contact.last_seen_at,
    }


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


def _lead_filters(request) -> dict:
    serializer = LeadFilterInput(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    filters = dict(serializer.validated_data)
    org_id = _org_id(request)
    if filters.get("owner") == "me":
        filters["owner"] = request.user.pk
    if "segment" in filters:
        filters["segment"] = get_for_org_or_404(Segment, org_id, pk=filters["segment"])
    return filters


class LeadListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(parameters=[LeadFilterInput], responses=LeadListOutput(many=True))
    def get(self, request):
        qs = lead_list(org_id=_org_id(request), filters=_lead_filters(request))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        phones = privacy.phones_of(c.pk for c in page)
        # The list always masks: revealing is a deliberate, audited act on one lead.
        rows = [_lead_row(c, pii.mask_phone(phones[c.pk]) if c.pk in phones else "") for c in page]
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


def _lead_detail(contact: Contact, request) -> dict:
    membership = membership_of(request)
    phone = privacy.phones_of([contact.pk]).get(contact.pk, "")
    shown = privacy.phone_for_viewer(
        contact=contact, phone=phone, membership=membership, ip=client_ip(request)
    )
    row = _lead_row(contact, shown)
    row.update(
        score_breakdown=score_breakdown_named(contact),
        timeline=lead_timeline(contact),
        consents=consent_states(contact),
        scored_at=contact.scored_at,
        order_count=contact.order_count,
        order_amount=contact.order_amount,
        phone_revealed=bool(phone) and membership.may_reveal_pii,
        profile_editable=lead_services.lead_profile_editable(
            contact=contact, membership=membership
        ),
        notes=[
            {
                "id": n.pk,
                "body": n.body,
                "author": n.author.username if n.author else "",
                "created_at": n.created_at,
            }
            for n in contact.notes.select_related("author")[:50]
        ],
        tasks=[_task_row(t) for t in contact.tasks.select_related("assignee")[:50]],
    )
    return row


def _task_row(task: Task) -> dict:
    return {
        "id": task.pk,
        "contact": task.contact_id,
        "title": task.title,
        "kind": task.kind,
        "assignee": task.assignee_id,
        "assignee_name": task.assignee.username if task.assignee_id else None,
        "due_at": task.due_at,
        "done_at": task.done_at,
        "lapsed_at": task.lapsed_at,
        "context": task.context,
    }


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


class LeadDetailApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    def _get(self, request, lead_id: int) -> Contact:
        return get_for_org_or_404(Contact, _org_id(request), pk=lead_id, merged_into__isnull=True)

    @extend_schema(responses=LeadDetailOutput)
    def get(self, request, lead_id: int):
        contact = self._get(request, lead_id)
        return Response(LeadDetailOutput(_lead_detail(contact, request)).data)

    @extend_schema(request=LeadPatchInput, responses=LeadDetailOutput)
    def patch(self, request, lead_id: int):
        contact = self._get(request, lead_id)
        serializer = LeadPatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        profile = {k: data[k] for k in lead_services.PROFILE_FIELDS if k in data}
        with transaction.atomic():
            lead_services.lead_update(
                contact=contact,
                actor=request.user,
                owner_id=data.get("owner", lead_services.UNSET),
                status=data.get("status"),
                tags=data.get("tags"),
            )
            if profile:
                lead_services.lead_profile_update(
                    contact=contact, membership=membership_of(request), changes=profile
                )
        return Response(LeadDetailOutput(_lead_detail(contact, request)).data)


class NoteInput(InputSerializer):
    body = serializers.CharField(max_length=4000)


class LeadNoteApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        request=NoteInput,
        responses={201: inline_serializer("CrmNoteOutput", {"id": serializers.IntegerField()})},
    )
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, _org_id(request), pk=lead_id)
        serializer = NoteInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = lead_services.note_add(
            contact=contact, author=request.user, body=serializer.validated_data["body"]
        )
        return Response({"id": note.pk}, status=status.HTTP_201_CREATED)


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
        contact = get_for_org_or_404(Contact, _org_id(request), pk=lead_id)
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
        return Response(TaskOutput(_task_row(task)).data, status=status.HTTP_201_CREATED)


class TaskListApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("open", bool, description="only tasks not done")],
        responses=TaskOutput(many=True),
    )
    def get(self, request):
        qs = Task.objects.for_org(_org_id(request)).filter(assignee=request.user)
        if request.query_params.get("open", "1") not in ("0", "false"):
            qs = qs.filter(done_at__isnull=True, lapsed_at__isnull=True)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs.select_related("assignee"), request, view=self)
        return paginator.get_paginated_response(
            TaskOutput([_task_row(t) for t in page], many=True).data
        )


class TaskCompleteApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=None, responses=TaskOutput)
    def post(self, request, task_id: int):
        task = get_for_org_or_404(Task, _org_id(request), pk=task_id)
        lead_services.task_complete(task=task)
        return Response(TaskOutput(_task_row(task)).data)


class AssignInput(InputSerializer):
    leads = serializers.ListField(child=IdField(), min_length=1, max_length=500)
    mode = serializers.ChoiceField(choices=["manual", "round_robin"], default="manual")
    owner = IdField(required=False, allow_null=True)


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
        org_id = _org_id(request)
        contacts = list(live_contacts(org_id).filter(pk__in=data["leads"]))
        with transaction.atomic():
            if data["mode"] == "round_robin":
                assigned = lead_services.leads_assign_round_robin(
                    org_id=org_id, contacts=contacts, actor=request.user
                )
            else:
                if "owner" not in data:
                    raise serializers.ValidationError({"owner": [_("手动分配需要负责人")]})
                for contact in contacts:
                    lead_services.lead_update(
                        contact=contact, actor=request.user, owner_id=data["owner"]
                    )
                assigned = len(contacts)
        return Response({"assigned": assigned})


# --- consent and privacy -------------------------------------------------------------------


class ConsentInput(InputSerializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    action = serializers.ChoiceField(choices=["grant", "withdraw"])
    source = serializers.CharField(max_length=64)
    evidence = serializers.DictField(required=False)


class LeadConsentApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        request=ConsentInput,
        responses=inline_serializer("CrmConsentOutput", {"consents": serializers.DictField()}),
    )
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, _org_id(request), pk=lead_id)
        serializer = ConsentInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        evidence = {**data.get("evidence", {}), "recorded_by": request.user.username}
        fn = (
            consent_services.consent_grant
            if data["action"] == "grant"
            else consent_services.consent_withdraw
        )
        fn(contact=contact, purpose=data["purpose"], source=data["source"], evidence=evidence)
        return Response({"consents": consent_states(contact)})


class LeadEraseApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, _org_id(request), pk=lead_id)
        privacy.contact_erase(
            contact=contact, actor=request.user, membership=membership_of(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeadPersonalDataApi(APIView):
    """Everything held about the person (PIPL art. 45 access request), as JSON; roles that may
    reveal personal data only, audited (``contact.export``)."""

    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, lead_id: int):
        contact = get_for_org_or_404(Contact, _org_id(request), pk=lead_id)
        body = privacy.contact_export(
            contact=contact,
            actor=request.user,
            membership=membership_of(request),
            ip=client_ip(request),
        )
        return Response(body)


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
        org_id = _org_id(request)
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
        merge = get_for_org_or_404(ContactMerge, _org_id(request), pk=merge_id)
        restored = contact_merge_undo(merge=merge, actor=request.user)
        return Response({"restored": restored.pk})


class LeadJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    processed = serializers.IntegerField()
    total = serializers.IntegerField()
    created = serializers.IntegerField()
    merged = serializers.IntegerField()
    error_count = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.DictField())
    message = serializers.CharField()
    download = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def _job_body(job) -> dict:
    from crm.models import LeadJobKind, LeadJobState

    ready = job.kind == LeadJobKind.EXPORT and job.state == LeadJobState.DONE and job.file
    return LeadJobOutput(
        {
            **{f: getattr(job, f) for f in LeadJobOutput().fields if hasattr(job, f)},
            "download": f"/api/v1/leads/jobs/{job.pk}/download" if ready else None,
        }
    ).data


class LeadExportApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(parameters=[LeadFilterInput], request=None, responses={202: LeadJobOutput})
    def post(self, request):
        from crm.services.lead_jobs import lead_export_start

        filters = _lead_filters(request)
        if "segment" in filters:
            filters["segment"] = filters["segment"].pk
        job = lead_export_start(
            membership=membership_of(request), filters=filters, ip=client_ip(request)
        )
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)


class ImportInput(InputSerializer):
    file = serializers.FileField(required=False)
    csv = serializers.CharField(required=False, max_length=5_000_000, trim_whitespace=False)
    consent_source = serializers.CharField(max_length=64)

    def validate(self, attrs):
        if not attrs.get("file") and not attrs.get("csv"):
            raise serializers.ValidationError({"file": [_("请上传 CSV 文件")]})
        return attrs


class LeadImportApi(APIView):
    permission_classes = [IsSalesOrAdmin]
    # A file upload (multipart, streamed to storage) or a small CSV inline as JSON.
    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(request=ImportInput, responses={202: LeadJobOutput})
    def post(self, request):
        from crm.services.lead_jobs import lead_import_start

        serializer = ImportInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = lead_import_start(
            membership=membership_of(request),
            upload=data.get("file") or data["csv"],
            consent_source=data["consent_source"],
        )
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)


def _visible_job(request, job_id: int):
    """The member's own job (admins see every job of the organisation); 404 otherwise."""
    from core.models import Role
    from crm.models import LeadJob

    job = get_for_org_or_404(LeadJob, _org_id(request), pk=job_id)
    membership = membership_of(request)
    if job.created_by_id != membership.user_id and membership.role != Role.ADMIN:
        raise Http404
    return job


class LeadJobApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=LeadJobOutput)
    def get(self, request, job_id: int):
        return Response(_job_body(_visible_job(request, job_id)))


class LeadJobDownloadApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, job_id: int):
        from crm.services.lead_jobs import lead_job_file

        job = _visible_job(request, job_id)
        handle = lead_job_file(job=job, membership=membership_of(request))
        if handle is None:
            raise Http404
        return FileResponse(
            handle, as_attachment=True, filename="leads.csv", content_type="text/csv; charset=utf-8"
        )


class LeadStatsApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        responses=inline_serializer("CrmLeadStats", {"histogram": serializers.ListField()})
    )
    def get(self, request):
        return Response(score_distribution(_org_id(request)))


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
        return Response(lead_funnel(org_id=_org_id(request), **params.validated_data))


# --- scoring -------------------------------------------------------------------------------


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
        validate_rule(**merged)
        return attrs


class ScoringRuleListApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"POST": [IsAdmin]}

    @extend_schema(responses=ScoringRuleSerializer(many=True))
    def get(self, request):
        rules = ScoringRule.objects.for_org(_org_id(request)).order_by("id")
        return Response(ScoringRuleSerializer(rules, many=True).data)

    @extend_schema(request=ScoringRuleSerializer, responses={201: ScoringRuleSerializer})
    def post(self, request):
        serializer = ScoringRuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        org_id = _org_id(request)
        model = scoring_model_for(org_id)
        rule = serializer.save(org_id=org_id, model=model)
        return Response(ScoringRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class ScoringRuleDetailApi(PerMethodPermissionsMixin, APIView):
    permission_classes = [IsSalesOrAdmin]
    permission_classes_by_method = {"PATCH": [IsAdmin], "DELETE": [IsAdmin]}

    @extend_schema(responses=ScoringRuleSerializer)
    def get(self, request, rule_id: int):
        rule = get_for_org_or_404(ScoringRule, _org_id(request), pk=rule_id)
        return Response(ScoringRuleSerializer(rule).data)

    @extend_schema(request=ScoringRuleSerializer, responses=ScoringRuleSerializer)
    def patch(self, request, rule_id: int):
        rule = get_for_org_or_404(ScoringRule, _org_id(request), pk=rule_id)
        serializer = ScoringRuleSerializer(rule, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, rule_id: int):
        get_for_org_or_404(ScoringRule, _org_id(request), pk=rule_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScoringRulePreviewApi(APIView):
    """How many leads an edited rule would match and move between grades (the rule editor's
    live preview); nothing is saved."""

    permission_classes = [IsAdmin]

    class RulePreviewInput(InputSerializer):
        condition = serializers.JSONField()
        points = serializers.IntegerField(min_value=-1000, max_value=1000)
        is_active = serializers.BooleanField(required=False, default=True)

    class RulePreviewOutput(serializers.Serializer):
        matching = serializers.IntegerField()
        moved = serializers.IntegerField()
        moved_up = serializers.IntegerField()
        moved_down = serializers.IntegerField()

    @extend_schema(request=RulePreviewInput, responses=RulePreviewOutput)
    def post(self, request, rule_id: int):
        from crm.selectors import scoring_rule_preview

        rule = get_for_org_or_404(ScoringRule, _org_id(request), pk=rule_id)
        data = self.RulePreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        validate_rule(condition=values["condition"])
        return Response(
            scoring_rule_preview(
                rule=rule,
                condition=values["condition"],
                points=values["points"],
                is_active=values["is_active"],
            )
        )


# Above this many leads the re-score runs in the background and the API reports progress.
SYNC_RESCORE_LIMIT = 20_000


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
        from core.tasks import enqueue
        from crm.tasks import org_rescore_task

        org_id = _org_id(request)
        if live_contacts(org_id).count() <= SYNC_RESCORE_LIMIT:
            result = org_rescore(org_id=org_id, progress=progress_reporter(org_id))
            return Response({"state": "done", **result.as_dict()})
        progress_reporter(org_id)
        enqueue(org_rescore_task, org_id)
        return Response({"state": "queued"}, status=status.HTTP_202_ACCEPTED)

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
        return Response(rescore_progress(_org_id(request)))


# --- segments ------------------------------------------------------------------------------


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
        from crm.conditions import FIELDS, OPS_BY_KIND

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
        segments = Segment.objects.for_org(_org_id(request)).order_by("-id")
        return Response(SegmentSerializer(segments, many=True).data)

    @extend_schema(request=SegmentSerializer, responses={201: SegmentSerializer})
    def post(self, request):
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = serializer.save(org_id=_org_id(request), created_by=request.user)
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=SegmentSerializer)
    def get(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, _org_id(request), pk=segment_id)
        return Response(SegmentSerializer(segment).data)

    @extend_schema(request=SegmentSerializer, responses=SegmentSerializer)
    def patch(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, _org_id(request), pk=segment_id)
        serializer = SegmentSerializer(segment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, segment_id: int):
        get_for_org_or_404(Segment, _org_id(request), pk=segment_id).delete()
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
            _lead_row(c, pii.mask_phone(phones[c.pk]) if c.pk in phones else "") for c in sample
        ],
    }


class SegmentPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=PreviewOutput)
    def get(self, request, segment_id: int):
        segment = get_for_org_or_404(Segment, _org_id(request), pk=segment_id)
        return Response(PreviewOutput(_preview(segment_contacts(segment))).data)


class ConditionPreviewInput(InputSerializer):
    condition = serializers.JSONField()


class ConditionPreviewApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=ConditionPreviewInput, responses=PreviewOutput)
    def post(self, request):
        serializer = ConditionPreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        qs = contacts_matching(_org_id(request), serializer.validated_data["condition"])
        return Response(PreviewOutput(_preview(qs)).data)


# --- notifications -------------------------------------------------------------------------


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
        qs = Notification.objects.for_org(_org_id(request)).filter(user=request.user)[:50]
        return Response(NotificationOutput(qs, many=True).data)


class NotificationReadApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(request=None, responses=NotificationOutput)
    def post(self, request, notification_id: int):
        note = get_for_org_or_404(
            Notification, _org_id(request), pk=notification_id, user=request.user
        )
        if note.read_at is None:
            note.read_at = timezone.now()
            note.save(update_fields=["read_at", "updated_at"])
        return Response(NotificationOutput(note).data)


__all__ = ["ConditionError", "DomainError"]


# --- external events -------------------------------------------------------------------------


class IntegrationTokenAuthentication:
    """``Authorization: Token qmi_…`` — an organisation's integration token (not a user)."""

    def authenticate(self, request):
        from rest_framework import exceptions
        from rest_framework.authentication import get_authorization_header

        from crm.services.ingest import integration_token_verify

        parts = get_authorization_header(request).decode("latin-1").split()
        if len(parts) != 2 or parts[0].lower() not in ("token", "bearer"):
            return None
        token = integration_token_verify(parts[1])
        if token is None:
            raise exceptions.AuthenticationFailed(_("集成令牌无效"))
        return (None, token)

    def authenticate_header(self, request):
        return "Token"


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI security scheme of the integration token (``check --deploy`` warns without)."""

    target_class = "crm.apis.leads.IntegrationTokenAuthentication"
    name = "integrationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token qmi_…`: an organisation's integration token",
        }


class HasIntegrationToken:
    def has_permission(self, request, view) -> bool:
        from crm.models import IntegrationToken

        return isinstance(request.auth, IntegrationToken)

    def has_object_permission(self, request, view, obj) -> bool:
        return True


class ExternalContactInput(serializers.Serializer):
    phone = serializers.CharField(required=False, max_length=20)
    openid = serializers.CharField(required=False, max_length=128)
    unionid = serializers.CharField(required=False, max_length=128)
    app_id = serializers.CharField(required=False, max_length=64)

    def validate(self, attrs):
        if not any(attrs.get(k) for k in ("phone", "openid", "unionid")):
            raise serializers.ValidationError(_("需要 phone、openid 或 unionid 之一"))
        return attrs


class ExternalEventInput(InputSerializer):
    contact = ExternalContactInput()
    type = serializers.ChoiceField(choices=[])
    props = serializers.DictField(required=False, default=dict)
    occurred_at = serializers.DateTimeField(required=False)
    key = serializers.CharField(required=False, max_length=100)

    def __init__(self, *args, **kwargs):
        from crm.services.events import EVENT_TYPES

        super().__init__(*args, **kwargs)
        self.fields["type"].choices = EVENT_TYPES

    def validate_props(self, value):
        import json

        if len(json.dumps(value, ensure_ascii=False)) > 8000:
            raise serializers.ValidationError(_("属性过大"))
        return value


class ExternalEventApi(APIView):
    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [HasIntegrationToken]

    @extend_schema(
        request=ExternalEventInput,
        responses={
            201: inline_serializer(
                "CrmExternalEventOutput",
                {"contact_id": serializers.IntegerField(), "recorded": serializers.BooleanField()},
            )
        },
    )
    def post(self, request):
        from crm.services.ingest import external_event_ingest

        serializer = ExternalEventInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        contact, recorded = external_event_ingest(
            token=request.auth,
            contact=data["contact"],
            type=data["type"],
            props=data["props"],
            occurred_at=data.get("occurred_at"),
            key=data.get("key"),
        )
        return Response(
            {"contact_id": contact.pk, "recorded": recorded},
            status=status.HTTP_201_CREATED if recorded else status.HTTP_200_OK,
        )


# --- sales teams and assignment rules ------------------------------------------------------


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
    members = [{"id": u.pk, "username": u.username} for u in team.members.order_by("id")]
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
        from crm.models import SalesTeam

        teams = SalesTeam.objects.for_org(_org_id(request)).prefetch_related("members")
        return Response([_team_body(t) for t in teams.order_by("id")])

    @extend_schema(request=TeamInput, responses={201: TeamOutput})
    def post(self, request):
        from crm.services.teams import team_save

        data = TeamInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = team_save(
            org_id=_org_id(request),
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
        from crm.models import SalesTeam

        return Response(_team_body(get_for_org_or_404(SalesTeam, _org_id(request), pk=team_id)))

    @extend_schema(request=TeamInput, responses=TeamOutput)
    def put(self, request, team_id: int):
        from crm.models import SalesTeam
        from crm.services.teams import team_save

        team = get_for_org_or_404(SalesTeam, _org_id(request), pk=team_id)
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
        from crm.models import SalesTeam

        get_for_org_or_404(SalesTeam, _org_id(request), pk=team_id).delete()
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
        from crm.services.teams import team_candidates

        users = team_candidates(org_id=_org_id(request))
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
    from crm.models import SalesTeam

    data = AssignmentRuleSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    org_id = _org_id(request)
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
        from crm.models import AssignmentRule

        rules = AssignmentRule.objects.for_org(_org_id(request)).select_related("team", "segment")
        return Response([_rule_body(r) for r in rules])

    @extend_schema(request=AssignmentRuleSerializer, responses={201: AssignmentRuleSerializer})
    def post(self, request):
        from crm.services.teams import assignment_rule_create

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
        from crm.models import AssignmentRule
        from crm.services.teams import assignment_rule_update

        rule = get_for_org_or_404(AssignmentRule, _org_id(request), pk=rule_id)
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
        from crm.models import AssignmentRule

        get_for_org_or_404(AssignmentRule, _org_id(request), pk=rule_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
