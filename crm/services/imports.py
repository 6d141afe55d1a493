"""CSV import of leads with the consent source they were collected under."""

from __future__ import annotations

import csv
import io

from django.db import transaction

from core.errors import DomainError
from crm.models import ConsentPurpose, Contact, Gender, IdentityKind, IncomeLevel, Source
from crm.services.consent import consent_grant
from crm.services.contacts import contact_get_or_create_by_identity
from crm.services.identity import normalise_identity

COLUMNS = {
    "nickname",
    "phone",
    "gender",
    "birth_year",
    "province",
    "city",
    "income_level",
    "tags",
    "sms_marketing",
    "wechat_marketing",
}
YES = {"1", "yes", "y", "true", "是", "同意"}
MAX_ROWS = 50_000


def leads_import_csv(
    *, org_id: int, text: str, consent_source: str, actor=None, progress=None
) -> dict:
    """Create or update leads from CSV (header row required; phone is the identity). Rows
    that fail validation are reported, the others imported, each row in its own transaction.
    Marketing consent columns are recorded in the ledger with ``consent_source``."""
    from core.models import Organization

    org = Organization.objects.get(pk=org_id)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    unknown = sorted(set(reader.fieldnames or []) - COLUMNS)
    if not reader.fieldnames or unknown:
        raise DomainError(
            "unknown CSV columns",
            fields={"csv": [f"unknown columns: {unknown}", f"allowed: {sorted(COLUMNS)}"]},
        )
    created = updated = 0
    errors = []
    rows = list(reader)
    if len(rows) > MAX_ROWS:
        raise DomainError("too many rows", fields={"csv": [f"at most {MAX_ROWS} rows"]})
    for n, row in enumerate(rows, start=2):
        try:
            with transaction.atomic():
                was_new = _import_row(org, row, consent_source, n)
            created += was_new
            updated += not was_new
        except DomainError as exc:
            errors.append({"line": n, "error": exc.message, "fields": exc.fields})
        if progress and n % 500 == 0:
            progress(n - 1, len(rows))
    return {"created": created, "merged": updated, "errors": errors[:200]}


def _import_row(org, row: dict, consent_source: str, line: int) -> bool:
    attrs = {}
    if row.get("nickname"):
        attrs["nickname"] = row["nickname"].strip()[:64]
    gender = (row.get("gender") or "").strip().lower()
    gender = {"女": "female", "男": "male"}.get(gender, gender)
    if gender:
        if gender not in Gender.values:
            raise DomainError("bad gender", fields={"gender": [gender]})
        attrs["gender"] = gender
    if (row.get("birth_year") or "").strip():
        try:
            attrs["birth_year"] = int(row["birth_year"])
        except ValueError:
            raise DomainError(
                "bad birth_year", fields={"birth_year": [row["birth_year"]]}
            ) from None
    for name in ("province", "city"):
        if row.get(name):
            attrs[name] = row[name].strip()[:32]
    income = (row.get("income_level") or "").strip()
    if income:
        if income not in IncomeLevel.values:
            raise DomainError("bad income_level", fields={"income_level": [income]})
        attrs["income_level"] = income
    tags = [t.strip()[:20] for t in (row.get("tags") or "").split("|") if t.strip()]
    phone = (row.get("phone") or "").strip()
    if phone:
        value = normalise_identity(IdentityKind.PHONE, phone)
        contact, created = contact_get_or_create_by_identity(
            org=org,
            kind=IdentityKind.PHONE,
            value=value,
            defaults={**attrs, "source": Source.IMPORT, "tags": tags},
        )
        if not created:
            for name, value in attrs.items():
                if getattr(contact, name) in (None, "", "unknown"):
                    setattr(contact, name, value)
            contact.tags = sorted(set(contact.tags or []) | set(tags))
            contact.save()
    else:
        contact = Contact.objects.for_org(org).create(
            org=org, source=Source.IMPORT, tags=tags, **attrs
        )
        created = True
    for column, purpose in (
        ("sms_marketing", ConsentPurpose.SMS_MARKETING),
        ("wechat_marketing", ConsentPurpose.WECHAT_MARKETING),
    ):
        if (row.get(column) or "").strip().lower() in YES:
            consent_grant(
                contact=contact,
                purpose=purpose,
                source=consent_source,
                evidence={"import_line": line},
            )
    return created
