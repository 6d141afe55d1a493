"""CSV import of leads with the consent source they were collected under."""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.errors import DomainError
from crm.models import ConsentPurpose, Contact, Gender, IdentityKind, IncomeLevel, Source
from crm.services.consent import consent_grant
from crm.services.contacts import contact_get_or_create_by_identity
from crm.services.identity import identity_normalise

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


def csv_header_check(fieldnames: list[str] | None) -> None:
    """DomainError (400) naming unknown columns; a header row is required."""
    unknown = sorted(set(fieldnames or []) - COLUMNS)
    if not fieldnames or unknown:
        raise DomainError(
            _("CSV 列名无法识别"),
            fields={"csv": [f"unknown columns: {unknown}", f"allowed: {sorted(COLUMNS)}"]},
        )


def csv_row_import(*, org, row: dict, consent_source: str, row_number: int) -> bool:
    """Create or fill one lead from a CSV row (phone is the identity); True when created.
    Raises DomainError whose ``fields`` name the bad columns (never echoing their values)."""
    return _import_row(org, row, consent_source, row_number)


def _import_row(org, row: dict, consent_source: str, line: int) -> bool:
    attrs = {}
    if row.get("nickname"):
        attrs["nickname"] = row["nickname"].strip()[:64]
    gender = (row.get("gender") or "").strip().lower()
    gender = {"女": "female", "男": "male"}.get(gender, gender)
    if gender:
        if gender not in Gender.values:
            raise DomainError(
                _("性别无效"), fields={"gender": [_("应为 女/男/female/male/unknown")]}
            )
        attrs["gender"] = gender
    if (row.get("birth_year") or "").strip():
        try:
            attrs["birth_year"] = int(row["birth_year"])
        except ValueError:
            attrs["birth_year"] = 0
        if not 1900 <= attrs["birth_year"] <= 2100:
            raise DomainError(
                _("出生年份无效"), fields={"birth_year": [_("应为 1900–2100 的年份")]}
            )
    for name in ("province", "city"):
        if row.get(name):
            attrs[name] = row[name].strip()[:32]
    income = (row.get("income_level") or "").strip()
    if income:
        if income not in IncomeLevel.values:
            raise DomainError(_("收入水平无效"), fields={"income_level": [_("应为 low/mid/high")]})
        attrs["income_level"] = income
    tags = [t.strip()[:20] for t in (row.get("tags") or "").split("|") if t.strip()]
    phone = (row.get("phone") or "").strip()
    if phone:
        try:
            value = identity_normalise(IdentityKind.PHONE, phone)
        except DomainError:
            raise DomainError(
                _("手机号无效"), fields={"phone": [_("应为 11 位大陆手机号")]}
            ) from None
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
