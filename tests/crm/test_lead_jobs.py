"""CSV import and CSV/XLSX export as background jobs: 202 + job id, progress and a per-row
report, chunked commits (rows before a broken part of the file stay, with their report), masked
and audited exports downloadable by the member who asked for them only."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import AuditLog
from crm.models import ConsentEvent, Contact
from crm.selectors import lead_list
from crm.services import lead_jobs, privacy
from crm.services.contacts import contact_get_or_create_by_identity
from crm.services.privacy import EXPORT_COLUMNS, leads_export

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA = '=HYPERLINK("http://evil.example","点我")'

PHONE = "13812345678"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def _run(django_capture_on_commit_callbacks, call):
    """Make the request; the job runs when its transaction commits (eager task runner)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = call()
    assert response.status_code == 202, response.content
    return response.json()


def _import(client, django_capture_on_commit_callbacks, data: bytes, source="门店登记表"):
    upload = SimpleUploadedFile("leads.csv", data, content_type="text/csv")
    started = _run(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            "/api/v1/leads/import", {"file": upload, "consent_source": source}, format="multipart"
        ),
    )
    assert started["state"] == "queued" and started["kind"] == "import"
    return client.get(f"/api/v1/leads/jobs/{started['id']}").json()


def test_an_upload_is_imported_in_the_background_with_a_per_row_report(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    data = (
        "nickname,phone,gender,birth_year,city,tags,sms_marketing\n"
        "王小美,13700001234,女,1995,上海,护肤|宝妈,是\n"
        "坏行,12345,女,,,,\n"
        "李四,,外星,1800,,,\n"
        "张三,13700005678,男,1990,杭州,,\n"
    ).encode()
    job = _import(sales_bob.client(), django_capture_on_commit_callbacks, data)
    assert job["state"] == "done"
    assert (job["processed"], job["total"], job["created"], job["error_count"]) == (4, 4, 2, 2)
    assert {(e["row"], e["field"]) for e in job["errors"]} == {
        (3, "phone"),
        (4, "gender"),
    }
    assert all(e["message"] for e in job["errors"])
    assert "12345" not in str(job["errors"])  # the rejected value is never echoed
    contact = Contact.objects.for_org(acme).get(nickname="王小美")
    assert sorted(contact.tags) == ["宝妈", "护肤"] and contact.gender == "female"
    event = ConsentEvent.objects.for_org(acme).get(contact=contact)
    assert (event.purpose, event.source) == ("sms_marketing", "门店登记表")


def test_a_file_broken_half_way_keeps_the_chunks_before_it(
    acme, sales_bob, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(lead_jobs, "IMPORT_CHUNK", 100)
    good = "".join(f"好{i},137{i:08d},女,1990,,,\n" for i in range(600))  # ~18 KB
    data = ("nickname,phone,gender,birth_year,city,tags,sms_marketing\n" + good).encode()
    data += b"\xff\xfe broken bytes,,,,,,\n" + "后面,13799999999,女,,,,\n".encode()
    job = _import(sales_bob.client(), django_capture_on_commit_callbacks, data)
    assert job["state"] == "failed"
    # Whole chunks before the unreadable part are in, with their report; the chunk that
    # met it rolled back as a whole, and the job says where to resume.
    kept = job["processed"]
    assert 0 < kept < 600 and kept % 100 == 0 and job["created"] == kept
    assert str(kept + 2) in job["message"]
    names = set(Contact.objects.for_org(acme).values_list("nickname", flat=True))
    assert names == {f"好{i}" for i in range(kept)}


def test_unknown_columns_are_refused_at_once(acme, sales_bob):
    upload = SimpleUploadedFile("x.csv", b"nickname,shoe_size\n,42\n", content_type="text/csv")
    response = sales_bob.client().post(
        "/api/v1/leads/import", {"file": upload, "consent_source": "x"}, format="multipart"
    )
    assert response.status_code == 400
    assert "shoe_size" in str(response.json()["fields"])


def test_exports_are_masked_by_role_audited_and_for_their_requester_only(
    acme, sales_bob, admin_carol, outsider_erin, django_capture_on_commit_callbacks
):
    contact_get_or_create_by_identity(
        org=acme, kind="phone", value=PHONE, defaults={"nickname": "独一无二的昵称"}
    )

    def export(actor):
        client = actor.client()
        started = _run(
            django_capture_on_commit_callbacks, lambda: client.post("/api/v1/leads/export")
        )
        job = client.get(f"/api/v1/leads/jobs/{started['id']}").json()
        assert job["state"] == "done" and (job["processed"], job["total"]) == (1, 1)
        response = client.get(job["download"])
        assert response.status_code == 200
        return job, b"".join(response.streaming_content).decode("utf-8")

    job, text = export(sales_bob)
    assert text.startswith("\ufeff") and "独一无二的昵称" in text
    assert "138****5678" in text and PHONE not in text
    _job, text = export(admin_carol)
    assert PHONE in text
    exports = AuditLog.objects.for_org(acme).filter(action="leads.export").order_by("created_at")
    assert [(e.detail["phones"], e.detail["format"]) for e in exports] == [
        ("masked", "csv"),
        ("revealed", "csv"),
    ]

    # Only the requester downloads (the admin sees the job, not the file); other orgs see nothing.
    assert admin_carol.client().get(job["download"]).status_code == 404
    assert admin_carol.client().get(f"/api/v1/leads/jobs/{job['id']}").status_code == 200
    assert outsider_erin.client().get(f"/api/v1/leads/jobs/{job['id']}").status_code == 404
    assert outsider_erin.client().get(job["download"]).status_code == 404


def test_job_files_are_deleted_after_their_retention(
    acme, sales_bob, media, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    client = sales_bob.client()
    started = _run(django_capture_on_commit_callbacks, lambda: client.post("/api/v1/leads/export"))
    assert list(media.rglob("*.csv"))
    assert lead_jobs.lead_jobs_sweep(now=timezone.now() + timedelta(hours=25)) == 1
    assert not list(media.rglob("*.csv"))
    assert client.get(f"/api/v1/leads/jobs/{started['id']}").json()["download"] is None


def test_an_xlsx_export_opens_with_masked_phones_and_formulas_left_as_text(acme, sales_bob):
    for i in range(30):
        contact_get_or_create_by_identity(
            org=acme, kind="phone", value=f"1390000{i:04d}", defaults={"nickname": f"观众{i}"}
        )
    contact_get_or_create_by_identity(
        org=acme, kind="phone", value=PHONE, defaults={"nickname": FORMULA, "city": "@SUM(1)"}
    )
    out = io.BytesIO()
    leads_export(
        contacts=lead_list(org_id=acme.pk, filters={}),
        membership=sales_bob.membership,
        fmt="xlsx",
        out=out,
    )
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == EXPORT_COLUMNS and len(rows) == 32
    by_phone = {row[2]: row for row in rows[1:]}
    assert "138****5678" in by_phone and "139****0007" in by_phone
    assert not any(PHONE in str(row) for row in rows)
    # A nickname that looks like a formula is a text cell, exactly as typed: no quote added,
    # nothing Excel would evaluate.
    cells = {c.value: c.data_type for row in sheet.iter_rows(min_row=2) for c in row if c.value}
    assert cells[FORMULA] == "s" and cells["@SUM(1)"] == "s"
    audit = AuditLog.objects.for_org(acme).get(action="leads.export")
    assert audit.detail == {"rows": 31, "format": "xlsx", "phones": "masked"}


def test_an_excel_export_downloads_as_xlsx_and_a_bad_format_is_refused(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    contact_get_or_create_by_identity(
        org=acme, kind="phone", value=PHONE, defaults={"nickname": "独一无二的昵称"}
    )
    client = sales_bob.client()
    started = _run(
        django_capture_on_commit_callbacks,
        lambda: client.post("/api/v1/leads/export", {"format": "xlsx"}, format="json"),
    )
    job = client.get(f"/api/v1/leads/jobs/{started['id']}").json()
    assert job["state"] == "done" and (job["processed"], job["total"]) == (1, 1)
    response = client.get(job["download"])
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert 'filename="leads.xlsx"' in response["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert [c.value for c in book.active[2]][1:3] == ["独一无二的昵称", "138****5678"]

    # CSV stays the default, named as before.
    started = _run(django_capture_on_commit_callbacks, lambda: client.post("/api/v1/leads/export"))
    download = client.get(client.get(f"/api/v1/leads/jobs/{started['id']}").json()["download"])
    assert 'filename="leads.csv"' in download["Content-Disposition"]
    assert download["Content-Type"].startswith("text/csv")

    for body, field in (({"format": "pdf"}, "format"), ({"fromat": "xlsx"}, "fromat")):
        response = client.post("/api/v1/leads/export", body, format="json")
        assert response.status_code == 400
        assert response.json()["fields"][field]
    assert AuditLog.objects.for_org(acme).filter(action="leads.export").count() == 2


def test_an_xlsx_over_a_worksheets_rows_fails_with_a_message_saying_what_to_do(
    acme, sales_bob, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(privacy, "XLSX_MAX_ROWS", 1)
    for phone in (PHONE, "13912345678"):
        contact_get_or_create_by_identity(org=acme, kind="phone", value=phone, defaults={})
    client = sales_bob.client()
    started = _run(
        django_capture_on_commit_callbacks,
        lambda: client.post("/api/v1/leads/export", {"format": "xlsx"}, format="json"),
    )
    job = client.get(f"/api/v1/leads/jobs/{started['id']}").json()
    assert job["state"] == "failed" and job["download"] is None
    assert "导出 CSV" in job["message"]
    assert not AuditLog.objects.for_org(acme).filter(action="leads.export").exists()
