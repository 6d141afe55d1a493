"""Personal data (PIPL): reveal with audit, masked export with audit, the person's own data
(access export) and its erasure everywhere, both driven by ``crm.personal_data``;
encryption-key rotation."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

import xlsxwriter
from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import models, transaction
from django.db.models import Case, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from core import pii
from core.errors import DomainError, Forbidden
from core.models import AuditLog, Membership
from crm import personal_data
from crm.models import Contact, ContactIdentity, IdentityKind


def phones_of(contact_ids: Iterable[int]) -> dict[int, str]:
    """contact id → decrypted phone (first phone identity)."""
    out: dict[int, str] = {}
    rows = ContactIdentity.unscoped.filter(
        contact_id__in=list(contact_ids), kind=IdentityKind.PHONE
    ).order_by("id")
    for contact_id, token in rows.values_list("contact_id", "value_encrypted"):
        out.setdefault(contact_id, pii.decrypt(token))
    return out


def phone_for_viewer(
    *, contact: Contact, phone: str, membership: Membership | None, ip: str | None = None
) -> str:
    """The phone as this staff member may see it: full (and audited) when the role may
    reveal personal data, masked otherwise."""
    if not phone:
        return ""
    if membership is None or not membership.may_reveal_pii:
        return pii.mask_phone(phone)
    AuditLog.objects.for_org(contact.org_id).create(
        org_id=contact.org_id,
        actor_id=membership.user_id,
        action="pii.reveal",
        target_type="contact",
        target_id=str(contact.pk),
        detail={"field": "phone"},
        ip=ip,
    )
    return phone


EXPORT_COLUMNS = [
    "id",
    "nickname",
    "phone",
    "gender",
    "birth_year",
    "province",
    "city",
    "income_level",
    "tags",
    "score",
    "grade",
    "status",
    "owner",
    "source",
    "lifecycle",
    "rfm",
]


EXPORT_FORMATS = ("csv", "xlsx")
# A worksheet holds 1,048,576 rows; one is the header.
XLSX_MAX_ROWS = 1_048_575
EXPORT_BATCH = 2000


def _export_rows(
    *,
    contacts: models.QuerySet,
    reveal: bool,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[list]:
    """The one row builder of both formats: one list of cell values per lead (numbers as
    numbers, text as text, phones masked unless ``reveal``), read ``EXPORT_BATCH`` leads at a
    time with their phones. Each format neutralises formulas its own way."""
    done = 0
    batch: list[Contact] = []

    def rows() -> Iterator[list]:
        nonlocal done
        phones = phones_of(c.pk for c in batch)
        for c in batch:
            phone = phones.get(c.pk, "")
            yield [
                c.pk,
                c.nickname or "",
                phone if reveal else pii.mask_phone(phone) if phone else "",
                c.gender,
                c.birth_year or "",
                c.province or "",
                c.city or "",
                c.income_level,
                "|".join(c.tags or []),
                "" if c.score is None else c.score,
                c.grade,
                c.status,
                c.owner.username if c.owner_id else "",
                c.source,
                c.lifecycle,
                c.rfm,
            ]
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, total)

    for contact in contacts.select_related("owner").iterator(chunk_size=EXPORT_BATCH):
        batch.append(contact)
        if len(batch) >= EXPORT_BATCH:
            yield from rows()
    yield from rows()


def _write_csv(rows: Iterable[list], out) -> None:
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_csv_safe(v) if isinstance(v, str) else v for v in row])


def _write_xlsx(rows: Iterable[list], out) -> None:
    # constant_memory: each row goes to disk when the next one starts and strings are written
    # inline (no shared-string table), so memory stays flat however many leads. Text cells go
    # through write_string: a nickname like "=HYPERLINK(...)" stays text, never a formula.
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True})
    sheet = workbook.add_worksheet("leads")
    bold = workbook.add_format({"bold": True})
    for col, name in enumerate(EXPORT_COLUMNS):
        sheet.write_string(0, col, name, bold)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if isinstance(value, str):
                if value:
                    sheet.write_string(r, col, value)
            else:
                sheet.write_number(r, col, value)
    workbook.close()


def leads_export(
    *,
    contacts: models.QuerySet,
    membership: Membership,
    fmt: str = "csv",
    ip: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    out=None,
):
    """The given leads as CSV or XLSX, written to ``out`` (CSV: a text stream; XLSX: a binary
    file or a path), ``EXPORT_BATCH`` leads at a time, in memory that does not grow with the
    number of leads; phones masked unless the role may reveal them. With ``out`` None the CSV
    is returned as a string (XLSX needs ``out``). One audit row per export (who, how many,
    which format, masked or not). Raises DomainError for an XLSX over a worksheet's rows."""
    if fmt not in EXPORT_FORMATS:
        raise DomainError(_("未知的导出格式"), fields={"format": [_("应为 csv 或 xlsx")]})
    reveal = membership.may_reveal_pii
    total = contacts.count()
    if fmt == "xlsx" and total > XLSX_MAX_ROWS:
        raise DomainError(
            _("Excel 最多 %(max)s 行，请缩小筛选范围或导出 CSV") % {"max": f"{XLSX_MAX_ROWS:,}"}
        )
    rows = _export_rows(contacts=contacts, reveal=reveal, total=total, progress=progress)
    buffered = out is None
    if fmt == "xlsx":
        _write_xlsx(rows, out)
    else:
        out = io.StringIO() if buffered else out
        _write_csv(rows, out)
    AuditLog.objects.for_org(membership.org_id).create(
        org_id=membership.org_id,
        actor_id=membership.user_id,
        action="leads.export",
        target_type="contact",
        target_id="",
        detail={"rows": total, "format": fmt, "phones": "revealed" if reveal else "masked"},
        ip=ip,
    )
    return out.getvalue() if buffered and fmt == "csv" else ""


def _csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection)."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def contact_erase(*, contact: Contact, actor=None, membership: Membership | None = None) -> None:
    """Erase a person's personal data everywhere (PIPL art. 47 deletion request), as the
    personal-data map (``crm.personal_data.TABLES``) says: rows reached through a foreign
    key, through one of the person's hashes, or through a finder; ``delete`` tables lose the
    rows, the others keep them (anonymous counts) with personal fields blanked, free text
    removed and keys replaced by a tombstone unique per row. A merged-away tombstone of the
    same person is erased with them. Idempotent: erasing twice changes nothing more.

    ``membership`` None means the caller already decided the request is the person's own
    (viewer self-service) or a system job; staff need the admin role."""
    if membership is not None and membership.role not in ("admin",):
        raise Forbidden("only an admin may erase personal data")
    org_id = contact.org_id
    with transaction.atomic():
        ids = _person_contact_ids(contact)
        _erase_rows(org_id, ids)
        AuditLog.objects.for_org(org_id).create(
            org_id=org_id,
            actor=actor,
            action="contact.erase",
            target_type="contact",
            target_id=str(contact.pk),
            detail={"contacts": ids},
        )


# Writes for a person can land after their erasure: a claim answered from Redis reaches the
# database when the reconciler runs, the hub records chat and events in batches, and a viewer
# token (VIEWER_TOKEN_MAX_AGE) keeps working until it expires. The sweep erases again what
# arrived since, for as long as such writes can come.
ERASURE_FOLLOW_UP = timedelta(hours=13)


def erasure_sweep(*, now: datetime.datetime | None = None) -> int:
    """Erase again every person whose erasure was audited within ``ERASURE_FOLLOW_UP``
    (idempotent; no new audit row: it completes the audited erasure). Found through the
    audit log's created_at index, not by scanning contacts. Returns how many were swept."""
    now = now or timezone.now()
    erasures = (
        AuditLog.unscoped.filter(action="contact.erase", created_at__gte=now - ERASURE_FOLLOW_UP)
        .values_list("org_id", "target_id")
        .distinct()
    )
    swept = 0
    for org_id, target_id in erasures:
        contact = Contact.unscoped.filter(org_id=org_id, pk=int(target_id)).first()
        if contact is None:
            continue
        with transaction.atomic():
            _erase_rows(org_id, _person_contact_ids(contact))
        swept += 1
    return swept


def _erase_rows(org_id: int, ids: list[int]) -> None:
    hashes = _person_hashes(org_id, ids)
    now = timezone.now()
    # Every table's rows are found before any is changed: erasing one table rewrites keys
    # another finds its rows by (a staff notice's key, its console text).
    targets = []
    for label, table in personal_data.TABLES.items():
        if not table.reached:
            continue
        model = apps.get_model(label)
        rows = _rows(model, table, org_id=org_id, contact_ids=ids, hashes=hashes)
        targets.append((model, table, list(rows.values_list("pk", flat=True))))
    for model, table, pks in targets:
        for start in range(0, len(pks), ERASE_CHUNK):
            rows = model._default_manager.filter(pk__in=pks[start : start + ERASE_CHUNK])
            if table.on_erase == "delete":
                rows.delete()
            else:
                _scrub(model, table, rows)
    Contact.objects.for_org(org_id).filter(pk__in=ids, erased_at=None).update(erased_at=now)


def contact_export(
    *, contact: Contact, actor=None, membership: Membership | None = None, ip: str | None = None
) -> dict:
    """Everything held about the person (PIPL art. 45 access request): every row the
    personal-data map reaches for them, every field of it (ciphertext decrypted) but staff
    members' own data, grouped by table. One ``contact.export`` audit row.

    ``membership`` None means the caller already decided the request is the person's own
    (viewer self-service); staff need a role that may reveal personal data."""
    if membership is not None and not membership.may_reveal_pii:
        raise Forbidden("this role may not export a person's data")
    org_id = contact.org_id
    ids = _person_contact_ids(contact)
    hashes = _person_hashes(org_id, ids)
    tables: dict[str, list[dict]] = {}
    for label, table in personal_data.TABLES.items():
        if not table.reached:
            continue
        model = apps.get_model(label)
        rows = _rows(model, table, org_id=org_id, contact_ids=ids, hashes=hashes).order_by("pk")
        out = [_export_row(model, table, row) for row in rows]
        if out:
            tables[label] = out
    AuditLog.objects.for_org(org_id).create(
        org_id=org_id,
        actor=actor,
        action="contact.export",
        target_type="contact",
        target_id=str(contact.pk),
        detail={"tables": sorted(tables), "rows": sum(len(v) for v in tables.values())},
        ip=ip,
    )
    return {
        "contact": contact.pk,
        "exported_at": timezone.now().isoformat(),
        "tables": tables,
    }


def _person_contact_ids(contact: Contact) -> list[int]:
    merged_away = (
        Contact.objects.for_org(contact.org_id)
        .filter(merged_into=contact)
        .values_list("pk", flat=True)
    )
    return [contact.pk, *merged_away]


def _person_hashes(org_id: int, contact_ids: list[int]) -> dict[str, set[str]]:
    """identity kind → the person's lookup hashes: their identities' plus every hash column
    of the rows reached through a foreign key (a follower's openid, an OTP's phone, an outbox
    row's address), so rows keyed by a hash the person no longer has as an identity are
    still found. Tombstones (``~…``) are never hashes."""
    found: dict[str, set[str]] = {}
    for kind, value in ContactIdentity.unscoped.filter(
        org_id=org_id, contact_id__in=contact_ids
    ).values_list("kind", "value_hash"):
        found.setdefault(kind, set()).add(value)
    for label, table in personal_data.TABLES.items():
        if not (table.via and table.hashes):
            continue
        model = apps.get_model(label)
        rows = _rows(model, table, org_id=org_id, contact_ids=contact_ids, hashes={}, via_only=True)
        for column, kinds in table.hashes.items():
            for value in rows.values_list(column, flat=True).distinct():
                if value and not value.startswith(TOMBSTONE):
                    for kind in kinds:
                        found.setdefault(kind, set()).add(value)
    return found


def _rows(
    model,
    table: personal_data.Table,
    *,
    org_id: int,
    contact_ids: list[int],
    hashes: dict[str, set[str]],
    via_only: bool = False,
) -> models.QuerySet:
    q = models.Q(pk__in=[])
    for path in table.via:
        q |= models.Q(**{f"{path}__in": contact_ids})
    if not via_only:
        for column, kinds in table.hashes.items():
            values = set().union(*(hashes.get(kind, set()) for kind in kinds))
            if values:
                q |= models.Q(**{f"{column}__in": sorted(values)})
        for name in table.finders:
            q |= personal_data.FINDERS[name](org_id=org_id, contact_ids=contact_ids)
    qs = getattr(model, "unscoped", model._default_manager).filter(q)
    if any(f.name == "org" for f in model._meta.concrete_fields):
        qs = qs.filter(org_id=org_id)
    return qs


TOMBSTONE = "~"
ERASE_CHUNK = 500  # ids per statement (SQLite's bind-parameter limit, short statements)


def _scrub(model, table: personal_data.Table, rows: models.QuerySet) -> None:
    # One UPDATE: the rows were found through the very key columns it rewrites.
    updates: dict = {}
    for name, cls in table.fields.items():
        if cls not in personal_data.ERASED:
            continue
        f = model._meta.get_field(name)
        if name in table.text_keys:
            _drop_json_keys(rows, f.attname, table.text_keys[name])
            continue
        if cls == personal_data.KEY and not f.null:
            # One tombstone per row, so unique columns and unique pairs such as
            # (account, openid_hash) hold however many of the person's rows share the key
            # space; an empty key stays empty.
            prefix = f"{TOMBSTONE}erased-" if (f.max_length or 64) >= 27 else TOMBSTONE
            updates[f.attname] = Case(
                When(**{name: ""}, then=Value("")),
                default=Concat(Value(prefix), Cast("pk", output_field=models.CharField())),
                output_field=models.CharField(),
            )
        else:
            updates[f.attname] = _blank(f)
    if updates:
        rows.update(**updates)


def _drop_json_keys(rows: models.QuerySet, attname: str, keys: tuple[str, ...]) -> None:
    # Row by row (portable across SQLite and PostgreSQL): a person has few such rows.
    for pk, value in rows.values_list("pk", attname):
        if isinstance(value, dict) and set(keys) & set(value):
            kept = {k: v for k, v in value.items() if k not in keys}
            rows.model._default_manager.filter(pk=pk).update(**{attname: kept})


def _blank(f) -> object:
    if f.has_default():
        return f.get_default()
    if f.null:
        return None
    if isinstance(f, models.CharField | models.TextField):
        return ""
    raise TypeError(f"{f.model._meta.label}.{f.name}: no blank value to erase it with")


def _export_row(model, table: personal_data.Table, row) -> dict:
    out = {}
    for f in model._meta.concrete_fields:
        if table.fields.get(f.name) == personal_data.STAFF:
            continue  # a staff member's own data (their IP in the audit log) is not the person's
        value = getattr(row, f.attname)
        if table.fields.get(f.name) == personal_data.ENCRYPTED and value:
            value = pii.decrypt(value)
        elif isinstance(value, datetime.datetime | datetime.date):
            value = value.isoformat()
        elif isinstance(value, decimal.Decimal):
            value = str(value)
        elif isinstance(f, models.FileField):
            value = value.name if value else ""
        out[f.attname] = value
    return out


def rotate_pii_keys() -> tuple[int, int]:
    """Re-encrypt every identity under the newest key (PII_ENCRYPTION_KEYS[0]). Returns
    (rotated, unreadable): unreadable tokens were encrypted under a key no longer configured
    and are left untouched (put the old key back, then rotate again)."""

    rotated = unreadable = 0
    for identity in ContactIdentity.unscoped.only("id", "value_encrypted").iterator(
        chunk_size=1000
    ):
        try:
            new = pii.rotate(identity.value_encrypted)
        except InvalidToken:
            unreadable += 1
            continue
        if new != identity.value_encrypted:
            ContactIdentity.unscoped.filter(pk=identity.pk).update(value_encrypted=new)
            rotated += 1
    return rotated, unreadable
