"""CSV import and export of leads as background jobs with progress (``LeadJob``).

Start: ``lead_import_start`` / ``lead_export_start`` store a queued job (and the upload, streamed
to the default storage) and enqueue ``crm.lead_job_run`` after commit (core.tasks: in-process
threads by default, Celery in production). The job streams its file: rows are read one at a
time, never the whole file in memory.

Import commits in chunks of ``IMPORT_CHUNK`` rows. Each chunk is one transaction holding its
rows AND the job's counters and per-row errors, so the job row always tells exactly which rows
are in the database. A row that fails validation is reported (row number, field, message) and
skipped; the rest of its chunk is kept. A failure of the file itself (unreadable bytes half-way,
a database error) rolls back only the chunk in progress: the rows of earlier chunks stay,
with their report, the job ends ``failed`` and ``processed`` says where it stopped — fix the file
and import it again (phones make a re-import update, not duplicate, those leads).

Export writes CSV (BOM for Excel, formula-safe) or XLSX (XlsxWriter in constant-memory mode,
text cells written as text) to storage 2,000 leads at a time — phones masked unless the
requester's role may reveal them, audited as ``leads.export`` with the format; the download
link is for the requester only, named leads.csv / leads.xlsx after the stored file. Files are
deleted ``FILE_HOURS`` after the job started.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from datetime import timedelta

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError
from core.models import Membership, Organization
from core.tasks import enqueue
from crm.models import LeadJob, LeadJobKind, LeadJobState, Segment
from crm.selectors import lead_list
from crm.services.imports import csv_header_check, csv_row_import
from crm.services.privacy import EXPORT_FORMATS, leads_export

log = logging.getLogger(__name__)

IMPORT_CHUNK = 500
MAX_REPORTED_ERRORS = 1000
FILE_HOURS = 24  # uploads and exports hold personal data: kept one day


def _path(job: LeadJob, name: str) -> str:
    return f"crm/jobs/{job.org_id}/{job.pk}-{name}"


def _enqueue(job: LeadJob) -> None:
    enqueue("crm.lead_job_run", job.pk)


def lead_import_start(*, membership: Membership, upload, consent_source: str) -> LeadJob:
    """Queue an import of ``upload`` (a Django UploadedFile, or bytes/str for a small CSV
    posted inline). The header is checked now (a 400 naming unknown columns); rows later."""

    if isinstance(upload, str | bytes):
        data = upload.encode() if isinstance(upload, str) else upload
        upload = ContentFile(data, name="import.csv")
    head = upload.read(64 * 1024)
    upload.seek(0)
    first = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
    try:
        fieldnames = next(csv.reader(first), None)
    except csv.Error as exc:
        raise DomainError(_("CSV 无法读取"), fields={"csv": [str(exc)]}) from None
    csv_header_check([f.strip() for f in fieldnames] if fieldnames else None)
    with transaction.atomic():
        job = LeadJob.objects.for_org(membership.org_id).create(
            org_id=membership.org_id,
            kind=LeadJobKind.IMPORT,
            created_by_id=membership.user_id,
            params={"consent_source": consent_source},
        )
        # Django's storage copies the upload chunk by chunk (spooled to disk when large).
        job.file = default_storage.save(_path(job, "import.csv"), upload)
        job.save(update_fields=["file", "updated_at"])
        _enqueue(job)
    return job


def lead_export_start(
    *, membership: Membership, filters: dict, fmt: str = "csv", ip: str | None = None
) -> LeadJob:
    """Queue an export of the leads matching the list ``filters`` (ids, not objects) as
    ``fmt`` (one of ``EXPORT_FORMATS``)."""
    if fmt not in EXPORT_FORMATS:
        raise DomainError(_("未知的导出格式"), fields={"format": [_("应为 csv 或 xlsx")]})
    with transaction.atomic():
        job = LeadJob.objects.for_org(membership.org_id).create(
            org_id=membership.org_id,
            kind=LeadJobKind.EXPORT,
            created_by_id=membership.user_id,
            params={"filters": filters, "ip": ip, "format": fmt},
        )
        _enqueue(job)
    return job


def lead_job_run(*, job_id: int) -> LeadJob | None:
    """Run a queued job to its end (``done`` or ``failed``). Safe to call twice: only a
    queued job starts."""
    claimed = LeadJob.unscoped.filter(pk=job_id, state=LeadJobState.QUEUED).update(
        state=LeadJobState.RUNNING, updated_at=timezone.now()
    )
    if not claimed:
        return None
    job = LeadJob.unscoped.get(pk=job_id)
    try:
        if job.kind == LeadJobKind.IMPORT:
            _run_import(job)
        else:
            _run_export(job)
    except Exception as exc:
        log.exception("lead job %s failed", job.pk)
        job.refresh_from_db()
        job.state = LeadJobState.FAILED
        if job.kind == LeadJobKind.IMPORT:
            job.message = _("第 %(row)s 行起未导入（%(error)s），之前的行已保存") % {
                "row": job.processed + 2,
                "error": type(exc).__name__,
            }
        elif isinstance(exc, DomainError):
            job.message = str(exc.message)
        else:
            job.message = _("导出失败（%(error)s）") % {"error": type(exc).__name__}
    else:
        job.state = LeadJobState.DONE
    job.finished_at = timezone.now()
    if job.kind == LeadJobKind.EXPORT:
        # The filters may hold a phone or a name searched for: not kept past the run.
        job.params = {}
    job.save()
    return job


def _count_rows(name: str) -> int:
    """Lines after the header, counted on bytes (cheap, and still works on a file whose
    encoding breaks half-way); quoted multi-line fields make it an upper bound."""
    lines, last = 0, b"\n"
    with default_storage.open(name, "rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _run_import(job: LeadJob) -> None:
    org = Organization.objects.get(pk=job.org_id)
    consent_source = job.params.get("consent_source", "")
    job.total = _count_rows(job.file)
    LeadJob.unscoped.filter(pk=job.pk).update(total=job.total)
    with default_storage.open(job.file, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        csv_header_check([f.strip() for f in reader.fieldnames or []] or None)
        chunk: list[tuple[int, dict]] = []
        for row in reader:
            # Row numbers as a spreadsheet shows them: the header is row 1.
            chunk.append((reader.line_num, {k.strip(): v for k, v in row.items() if k}))
            if len(chunk) >= IMPORT_CHUNK:
                _import_chunk(job, org, chunk, consent_source)
                chunk = []
        if chunk:
            _import_chunk(job, org, chunk, consent_source)
    job.total = job.processed


def _import_chunk(job: LeadJob, org, chunk: list[tuple[int, dict]], consent_source: str) -> None:
    with transaction.atomic():
        for row_number, row in chunk:
            try:
                with transaction.atomic():
                    was_new = csv_row_import(
                        org=org, row=row, consent_source=consent_source, row_number=row_number
                    )
            except DomainError as exc:
                job.error_count += 1
                for field in exc.fields or {"csv": [exc.message]}:
                    if len(job.errors) < MAX_REPORTED_ERRORS:
                        job.errors.append(
                            {"row": row_number, "field": field, "message": str(exc.message)}
                        )
                continue
            job.created += was_new
            job.merged += not was_new
        job.processed += len(chunk)
        job.save(
            update_fields=[
                "processed",
                "created",
                "merged",
                "errors",
                "error_count",
                "total",
                "updated_at",
            ]
        )


def _run_export(job: LeadJob) -> None:
    membership = Membership.objects.get(org_id=job.org_id, user_id=job.created_by_id)
    filters = dict(job.params.get("filters") or {})
    if "segment" in filters:
        filters["segment"] = Segment.objects.for_org(job.org_id).get(pk=filters["segment"])
    contacts = lead_list(org_id=job.org_id, filters=filters)

    def progress(done: int, total: int) -> None:
        LeadJob.unscoped.filter(pk=job.pk).update(processed=done, total=total)

    fmt = job.params.get("format") or "csv"
    with tempfile.TemporaryFile("w+b") as tmp:
        # XLSX is written as bytes; CSV through a text layer.
        text = None if fmt == "xlsx" else io.TextIOWrapper(tmp, encoding="utf-8", newline="")
        if text:
            text.write("\ufeff")  # Excel reads UTF-8 only with a BOM
        leads_export(
            contacts=contacts,
            membership=membership,
            fmt=fmt,
            ip=job.params.get("ip"),
            progress=progress,
            out=text or tmp,
        )
        if text:
            text.flush()
            text.detach()
        tmp.seek(0)
        job.file = default_storage.save(_path(job, f"leads.{fmt}"), File(tmp))
    job.refresh_from_db(fields=["processed", "total"])


def lead_job_file(*, job: LeadJob, membership: Membership):
    """The export's file, opened for reading — for the member who asked for it only (its
    masking was decided by that member's role)."""
    if (
        job.kind != LeadJobKind.EXPORT
        or job.state != LeadJobState.DONE
        or job.created_by_id != membership.user_id
        or not job.file
        or not default_storage.exists(job.file)
    ):
        return None
    return default_storage.open(job.file, "rb")


def lead_jobs_sweep(now=None) -> int:
    """Delete job files older than ``FILE_HOURS`` (uploads and exports hold personal
    data); the job rows and their reports stay. Returns how many files went."""
    now = now or timezone.now()
    old = LeadJob.unscoped.filter(created_at__lt=now - timedelta(hours=FILE_HOURS)).exclude(file="")
    removed = 0
    for job in old.exclude(state__in=[LeadJobState.QUEUED, LeadJobState.RUNNING])[:1000]:
        default_storage.delete(job.file)
        LeadJob.unscoped.filter(pk=job.pk).update(file="")
        removed += 1
    return removed
