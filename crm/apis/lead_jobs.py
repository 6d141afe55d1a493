"""Bulk lead jobs: CSV import and export in the background, their state and download."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import membership_of
from core.permissions import IsSalesOrAdmin
from core.ratelimit import client_ip
from core.serializers import InputSerializer
from crm.apis.leads import LeadFilterInput, lead_filters
from crm.models import LeadJob, LeadJobKind, LeadJobState
from crm.selectors.lead_jobs import lead_job_for
from crm.services.lead_jobs import lead_export_start, lead_import_start, lead_job_file
from crm.services.privacy import EXPORT_FORMATS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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

    ready = job.kind == LeadJobKind.EXPORT and job.state == LeadJobState.DONE and job.file
    return LeadJobOutput(
        {
            **{f: getattr(job, f) for f in LeadJobOutput().fields if hasattr(job, f)},
            "download": f"/api/v1/leads/jobs/{job.pk}/download" if ready else None,
        }
    ).data


class ExportInput(InputSerializer):
    # In the body, not the query string: DRF reads ?format= as a renderer override.
    format = serializers.ChoiceField(choices=EXPORT_FORMATS, default="csv")


class LeadExportApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(
        parameters=[LeadFilterInput], request=ExportInput, responses={202: LeadJobOutput}
    )
    def post(self, request):
        filters = lead_filters(request)
        if "segment" in filters:
            filters["segment"] = filters["segment"].pk
        serializer = ExportInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = lead_export_start(
            membership=membership_of(request),
            filters=filters,
            fmt=serializer.validated_data["format"],
            ip=client_ip(request),
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
        serializer = ImportInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = lead_import_start(
            membership=membership_of(request),
            upload=data.get("file") or data["csv"],
            consent_source=data["consent_source"],
        )
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)


def _visible_job(request, job_id: int) -> LeadJob:
    """The member's own job (admins see every job of the organisation); 404 otherwise."""
    job = lead_job_for(membership=membership_of(request), job_id=job_id)
    if job is None:
        raise Http404
    return job


class LeadJobApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses=LeadJobOutput)
    def get(self, request, job_id: int):
        return Response(_job_body(_visible_job(request, job_id)))


class LeadJobDownloadApi(APIView):
    permission_classes = [IsSalesOrAdmin]

    @extend_schema(responses={(200, "text/csv"): str, (200, XLSX): bytes})
    def get(self, request, job_id: int):
        job = _visible_job(request, job_id)
        handle = lead_job_file(job=job, membership=membership_of(request))
        if handle is None:
            raise Http404
        # The stored name ends in the format the job wrote (crm/jobs/<org>/<id>-leads.xlsx).
        if job.file.endswith(".xlsx"):
            filename, content_type = "leads.xlsx", XLSX
        else:
            filename, content_type = "leads.csv", "text/csv; charset=utf-8"
        return FileResponse(
            handle, as_attachment=True, filename=filename, content_type=content_type
        )
